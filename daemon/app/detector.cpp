// The Detector's loop: consumers, thresholds, the ring buffer's records, the
// loops scan and the sweep. Decisions about processes, stall evidence and
// framework naming are in detector_decisions.cpp, detector_evidence.cpp and
// detector_frameworks.cpp.
#include "loopstall/detector.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <unordered_set>

#include "loopstall/clock.hpp"
#include "loopstall/phase_times.hpp"

namespace loopstall {
namespace {

constexpr std::uint64_t kSweepNs = 2'000'000'000ULL;
constexpr std::uint64_t kScanNs = Detector::kScanIntervalMs * 1'000'000ULL;

}  // namespace

Detector::Detector(const EngineOptions& opt, const EngineFactory& make, std::unique_ptr<StackSource> stacks)
    : engine_(make(opt)),
      stacks_(stacks ? std::move(stacks) : make_live_stack_source()),
      sample_period_ms_(opt.tuning.sample_period_ms()) {
  handler_ = [this](const void* d, std::size_t n) { dispatch(d, n); };
  const std::uint64_t now = monotonic_ns();
  next_scan_ = now;
  next_sweep_ = now + kSweepNs;
}

void Detector::add(Correlator& c) {
  consumers_.push_back(&c);
  if (sample_period_ms_ > 0) c.set_sample_period_ms(sample_period_ms_);
  update_threshold();
  // A capture counts from its own start, not from when the loops began.
  engine_->scan_loops(loops_);
  c.set_baseline(loops_);
  reclassify(c);
}

// The youngest iteration age any consumer gathers evidence for.
std::uint64_t Detector::evidence_after_ns() const {
  std::uint64_t ns = UINT64_MAX;
  for (const Correlator* c : consumers_) ns = std::min(ns, c->evidence_after_ns());
  return ns;
}

const Correlator* Detector::watcher_besides(const Correlator& c, std::uint32_t pid) const {
  for (const Correlator* other : consumers_)
    if (other != &c && other->watches(pid) && other->known_process(pid)) return other;
  return nullptr;
}

bool Detector::watched(std::uint32_t pid) const {
  return std::any_of(consumers_.begin(), consumers_.end(), [&](const Correlator* c) { return c->watches(pid); });
}

void Detector::set_sample_period_ns(std::uint64_t ns) {
  engine_->set_sample_period_ns(ns);
  sample_period_ms_ = Tuning::ns_to_ms(ns);
  if (sample_period_ms_ > 0)
    for (Correlator* c : consumers_) c->set_sample_period_ms(sample_period_ms_);
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
  if (!consumers_.empty()) engine_->set_threshold_ns(Tuning::ms_to_ns(ms));
}

// Routes one ring buffer record; sizes are checked before any cast.
void Detector::dispatch(const void* data, std::size_t size) {
  const auto* hdr = static_cast<const ls_event_hdr*>(data);
  switch (hdr->type) {
    case LS_EV_NEW_PROC:
      if (size >= sizeof(ls_new_proc_event)) {
        apply_decision(hdr->tgid, decide(hdr->tgid));
        identify_framework_now(hdr->tgid, hdr->tid);
      }
      break;
    case LS_EV_STALL:
      if (size >= sizeof(ls_stall_event)) {
        const auto& e = *static_cast<const ls_stall_event*>(data);
        identify_framework_now(e.loop.tgid, e.loop.tid);
        if (e.end_ns > e.loop.iter_start_ns) budget_.on_stall(e.loop.tid, e.end_ns - e.loop.iter_start_ns, e.end_ns);
        for (Correlator* c : consumers_) c->on_stall(e);
      }
      break;
    case LS_EV_LOOP_EXIT:
      if (size >= sizeof(ls_stall_event)) {
        const auto& e = *static_cast<const ls_stall_event*>(data);
        for (Correlator* c : consumers_) c->on_loop_exit(e);
        blocks_.erase(e.loop.tid);
        if (auto it = py_threads_.find(e.loop.tid); it != py_threads_.end()) {
          if (it->second.registered) engine_->forget_py_thread(e.loop.tid);
          py_threads_.erase(it);
        }
      }
      break;
    case LS_EV_SAMPLE:
      if (size >= offsetof(ls_sample_event, stack)) on_sample(*static_cast<const ls_sample_event*>(data), size);
      break;
    default: break;
  }
}

// Decisions whose NEW_PROC event was lost, and processes that are gone.
void Detector::sweep() {
  for (std::uint32_t pid : engine_->pending_procs()) apply_decision(pid, decide(pid));
  forget_gone_processes();
  // Records of threads that are no longer loops (their exit event was lost).
  std::unordered_set<std::uint32_t> live;
  for (const ls_loop& l : loops_) live.insert(l.tid);
  std::erase_if(blocks_, [&](const auto& kv) { return !live.count(kv.first); });
  budget_.keep_only(live);
  std::erase_if(py_threads_, [&](const auto& kv) {
    if (live.count(kv.first)) return false;
    if (kv.second.registered) engine_->forget_py_thread(kv.first);
    return true;
  });
}

void Detector::account_drops() {
  const std::uint64_t drops = engine_->stats().ringbuf_drops;
  for (Correlator* c : consumers_) c->add_lost(drops - drops_seen_);
  drops_seen_ = drops;
}

void Detector::scan_if_due() {
  const std::uint64_t now = monotonic_ns();
  if (now < next_scan_ || scanning_) return;
  const PhaseTimer timer(Phase::kScan);
  scanning_ = true;
  const std::uint64_t t = engine_->scan_loops(loops_);
  // Reports first (with the stacks of blocked loops); registering threads
  // for the sampler serves later samples and may take long on a host with
  // many new processes.
  check_exiting(t);
  capture_blocks(t);
  for (Correlator* c : consumers_) c->on_scan(loops_, t);
  register_python_threads(t);
  next_scan_ = now + kScanNs;
  ++scans_;
  scanning_ = false;
}

bool Detector::step(int max_wait_ms) {
  std::uint64_t now = monotonic_ns();
  const std::uint64_t wait_ns = next_scan_ > now ? next_scan_ - now : 0;
  const int timeout_ms = std::min<int>(max_wait_ms, static_cast<int>((wait_ns + 999'999) / 1'000'000));
  {
    const PhaseTimer timer(Phase::kRingBuffer);
    if (engine_->poll(std::max(timeout_ms, 0), handler_) < 0) return false;
  }
  scan_if_due();
  now = monotonic_ns();
  if (now >= next_sweep_) {
    sweep();
    account_drops();
    next_sweep_ = now + kSweepNs;
  }
  return true;
}

void Detector::flush(Correlator& c) {
  // What is in the ring now; bounded, a flood must not hold the caller.
  for (int i = 0; i < 10; ++i)
    if (engine_->poll(0, handler_) <= 0) break;
  const std::uint64_t t = engine_->scan_loops(loops_);
  c.flush_ongoing(loops_, t);
  account_drops();
}

}  // namespace loopstall
