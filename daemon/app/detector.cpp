#include "loopstall/detector.hpp"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "loopstall/clock.hpp"
#include "loopstall/procinfo.hpp"

namespace loopstall {
namespace {

constexpr std::uint64_t kSweepNs = 2'000'000'000ULL;
constexpr std::uint64_t kScanNs = Detector::kScanIntervalMs * 1'000'000ULL;

std::vector<std::uint32_t> all_pids() {
  std::vector<std::uint32_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* de = readdir(d)) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(de->d_name, &end, 10);
    if (end && *end == '\0' && pid > 0 && pid <= UINT32_MAX) out.push_back(static_cast<std::uint32_t>(pid));
  }
  closedir(d);
  return out;
}

}  // namespace

Detector::Detector(const EngineOptions& opt) : engine_(opt) {
  handler_ = [this](const void* d, std::size_t n) { dispatch(d, n); };
  const std::uint64_t now = monotonic_ns();
  next_scan_ = now;
  next_sweep_ = now + kSweepNs;
}

void Detector::add(Correlator& c) {
  consumers_.push_back(&c);
  update_threshold();
  reclassify(c);
}

void Detector::reclassify(Correlator& c) {
  for (std::uint32_t pid : all_pids())
    if (c.classify(pid) == LS_PROC_WATCH) engine_.insert_proc_state(pid, LS_PROC_WATCH);
}

void Detector::remove(Correlator& c) {
  consumers_.erase(std::remove(consumers_.begin(), consumers_.end(), &c), consumers_.end());
  update_threshold();
}

void Detector::update_threshold() {
  // The kernel reports at the lowest threshold any consumer wants; each
  // correlator filters for its own.
  double ms = 1e12;
  for (const Correlator* c : consumers_) ms = std::min(ms, c->threshold_ms());
  if (!consumers_.empty()) engine_.set_threshold_ns(static_cast<std::uint64_t>(ms * 1e6));
}

ls_proc_state Detector::decide(std::uint32_t pid) {
  ls_proc_state st = LS_PROC_IGNORE;
  for (Correlator* c : consumers_)
    if (c->classify(pid) == LS_PROC_WATCH) st = LS_PROC_WATCH;
  return st;
}

// Routes one ring buffer record; sizes are checked before any cast.
void Detector::dispatch(const void* data, std::size_t size) {
  const auto* hdr = static_cast<const ls_event_hdr*>(data);
  switch (hdr->type) {
    case LS_EV_NEW_PROC:
      if (size >= sizeof(ls_new_proc_event)) engine_.set_proc_state(hdr->tgid, decide(hdr->tgid));
      break;
    case LS_EV_STALL:
      if (size >= sizeof(ls_stall_event))
        for (Correlator* c : consumers_) c->on_stall(*static_cast<const ls_stall_event*>(data));
      break;
    case LS_EV_LOOP_EXIT:
      if (size >= sizeof(ls_stall_event))
        for (Correlator* c : consumers_) c->on_loop_exit(*static_cast<const ls_stall_event*>(data));
      break;
    default: break;
  }
}

// Decisions whose NEW_PROC event was lost, and processes that are gone.
void Detector::sweep() {
  for (std::uint32_t pid : engine_.pending_procs()) engine_.set_proc_state(pid, decide(pid));
  for (std::uint32_t pid : engine_.known_procs()) {
    if (process_exists(pid)) continue;
    engine_.forget_proc(pid);
    for (Correlator* c : consumers_) c->forget_process(pid);
  }
}

void Detector::account_drops() {
  const std::uint64_t drops = engine_.stats().ringbuf_drops;
  for (Correlator* c : consumers_) c->add_lost(drops - drops_seen_);
  drops_seen_ = drops;
}

bool Detector::step(int max_wait_ms) {
  std::uint64_t now = monotonic_ns();
  const std::uint64_t wait_ns = next_scan_ > now ? next_scan_ - now : 0;
  const int timeout_ms = std::min<int>(max_wait_ms, static_cast<int>((wait_ns + 999'999) / 1'000'000));
  if (engine_.poll(std::max(timeout_ms, 0), handler_) < 0) return false;
  now = monotonic_ns();
  if (now >= next_scan_) {
    engine_.scan_loops(loops_);
    const std::uint64_t t = monotonic_ns();
    for (Correlator* c : consumers_) c->on_scan(loops_, t);
    next_scan_ = now + kScanNs;
    ++scans_;
  }
  if (now >= next_sweep_) {
    sweep();
    account_drops();
    next_sweep_ = now + kSweepNs;
  }
  return true;
}

void Detector::flush(Correlator& c) {
  engine_.poll(0, handler_);
  engine_.scan_loops(loops_);
  c.flush_ongoing(loops_, monotonic_ns());
  account_drops();
}

}  // namespace loopstall
