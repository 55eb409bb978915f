#include "loopstall/detector.hpp"

#include <dirent.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "loopstall/clock.hpp"
#include "loopstall/frameworks.hpp"
#include "loopstall/procinfo.hpp"
#include "loopstall/syscalls.hpp"

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

Detector::Detector(const EngineOptions& opt, std::unique_ptr<StackSource> stacks)
    : engine_(opt),
      stacks_(stacks ? std::move(stacks) : make_live_stack_source()),
      sample_period_ms_(static_cast<double>(opt.sample_period_ns) / 1e6) {
  handler_ = [this](const void* d, std::size_t n) { dispatch(d, n); };
  const std::uint64_t now = monotonic_ns();
  next_scan_ = now;
  next_sweep_ = now + kSweepNs;
}

void Detector::add(Correlator& c) {
  consumers_.push_back(&c);
  if (sample_period_ms_ > 0) c.set_sample_period_ms(sample_period_ms_);
  update_threshold();
  reclassify(c);
}

void Detector::reclassify(Correlator& c) {
  for (std::uint32_t pid : all_pids()) {
    if (c.classify(pid) != LS_PROC_WATCH) continue;
    engine_.insert_proc_state(pid, LS_PROC_WATCH);
    watch_gc(pid);
  }
}

// CPython's GC probes live in the executable or in libpython: attach the
// file's (once per file, for every process mapping it).
void Detector::watch_gc(std::uint32_t pid) {
  for (const Correlator* c : consumers_) {
    const ProcInfo* p = c->known_process(pid);
    if (!p || !p->python) continue;
    const std::string root = "/proc/" + std::to_string(pid) + "/root";
    if (!p->libpython.empty()) engine_.attach_gc_probes(root + p->libpython);
    if (!p->exe.empty()) engine_.attach_gc_probes(root + std::string(strip_deleted(p->exe)));
    return;
  }
}

// The sampler copies Python frames itself once it knows the loop thread's
// thread state (a thread keeps its PyThreadState for life).
void Detector::register_python_threads(std::uint64_t now_ns) {
  constexpr std::uint64_t kRetryNs = 1'000'000'000ULL;
  for (const ls_loop& l : loops_) {
    if (!watched(l.tgid)) continue;
    auto [it, fresh] = py_threads_.try_emplace(l.tid);
    PyThreadSeen& seen = it->second;
    if (!fresh && seen.pid != l.tgid) {  // tid reused by another process
      if (seen.registered) engine_.forget_py_thread(l.tid);
      seen = {};
    }
    identify_framework(l, seen, now_ns);
    if (seen.registered || (seen.tried_ns && now_ns - seen.tried_ns < kRetryNs)) continue;
    seen.pid = l.tgid;
    seen.tried_ns = now_ns;
    if (auto t = stacks_->python_thread(l.tgid, l.tid)) {
      engine_.set_py_thread(l.tid, *t);
      seen.registered = true;
    }
  }
}

// Pure-Python frameworks differ only in their Python code: a loop thread's
// stack while it sleeps in epoll_wait shows whose poller it is
// (frameworks.hpp). Read once per loop thread, kept only if the thread slept
// through the read; every consumer (also one added later) is told.
void Detector::identify_framework(const ls_loop& l, PyThreadSeen& seen, std::uint64_t now_ns) {
  constexpr std::uint64_t kRetryNs = 1'000'000'000ULL, kRetryWokeNs = 100'000'000ULL;
  if (!seen.framework && l.run_state == LS_IDLE && now_ns >= seen.framework_retry_ns) {
    bool settled = false;  // native code already says (gevent, uvloop)
    for (const Correlator* c : consumers_)
      if (const ProcInfo* p = c->known_process(l.tgid)) settled |= decided_by_modules(p->native_loop);
    if (settled) return;
    const auto s = stacks_->sleeping_python_frames(l.tgid, l.tid);
    const auto after = engine_.find_loop(l.tid);
    if (s && is_epoll_wait(s->syscall) && after && after->run_state == LS_IDLE && after->last_ts_ns == l.last_ts_ns &&
        after->iterations == l.iterations) {
      seen.framework = loop_from_frames(s->frames);
    } else {
      // It woke meanwhile (a busy loop): soon again; no thread state (yet): later.
      seen.framework_retry_ns = now_ns + (s ? kRetryWokeNs : kRetryNs);
    }
  }
  if (seen.framework)
    for (Correlator* c : consumers_) c->set_stack_loop(l.tgid, *seen.framework);
}

// A thread of a watched process that has just entered epoll_wait (it asked
// for its process to be classified, or ended a stall): if it sleeps there
// now, its stack may already name the framework, before the scans do -- so
// that a stall in the first iterations is named too. Only a framework seen
// counts: finding none proves nothing from a read the loop may have raced.
void Detector::identify_framework_now(std::uint32_t pid, std::uint32_t tid) {
  bool known = false;
  for (const Correlator* c : consumers_)
    if (const ProcInfo* p = c->known_process(pid))
      known |= p->stack_loop.has_value() || decided_by_modules(p->native_loop);
  if (known || !watched(pid)) return;
  const auto s = stacks_->sleeping_python_frames(pid, tid);
  if (!s || !is_epoll_wait(s->syscall)) return;
  const auto k = loop_from_frames(s->frames);
  if (!k || *k == LoopKind::Python) return;
  for (Correlator* c : consumers_) c->set_stack_loop(pid, *k);
}

// A loop in a long iteration whose interpreter began Py_Finalize is tearing
// down, not stalling: tell the correlators before they report it.
void Detector::check_exiting(std::uint64_t now_ns) {
  const std::uint64_t after_ns = evidence_after_ns();
  for (const ls_loop& l : loops_) {
    if (!l.iter_start_ns || now_ns < l.iter_start_ns || now_ns - l.iter_start_ns < after_ns) continue;
    bool ask = false;
    for (const Correlator* c : consumers_) ask |= c->watches(l.tgid) && !c->exiting(l.tgid);
    if (!ask || !stacks_->interpreter_finalizing(l.tgid)) continue;
    for (Correlator* c : consumers_) c->interpreter_exiting(l.tgid);
  }
}

// The youngest iteration age any consumer gathers evidence for.
std::uint64_t Detector::evidence_after_ns() const {
  std::uint64_t ns = UINT64_MAX;
  for (const Correlator* c : consumers_) ns = std::min(ns, c->evidence_after_ns());
  return ns;
}

bool Detector::watched(std::uint32_t pid) const {
  return std::any_of(consumers_.begin(), consumers_.end(), [&](const Correlator* c) { return c->watches(pid); });
}

void Detector::on_sample(const ls_sample_event& e, std::size_t size) {
  // Variable length: the stack bytes must be inside the record.
  if (e.stack_len > sizeof e.stack || size < offsetof(ls_sample_event, stack) + e.stack_len) return;
  if (!watched(e.hdr.tgid)) return;
  // A budget: unwinding costs ~0.1 ms, and a host where every loop stalls
  // at once must not turn the daemon into the biggest CPU user.
  const std::uint64_t now = monotonic_ns();
  sample_tokens_ = std::min<double>(
      kSampleBudgetPerSec, sample_tokens_ + static_cast<double>(now - sample_refill_ns_) / 1e9 * kSampleBudgetPerSec);
  sample_refill_ns_ = now;
  if (sample_tokens_ < 1) {
    ++samples_over_budget_;
    return;
  }
  sample_tokens_ -= 1;
  auto s = stacks_->on_cpu(e);
  if (!s) return;
  for (Correlator* c : consumers_) c->on_sample(e.hdr.tgid, e.hdr.tid, e.iter_start_ns, *s);
}

// Loop threads blocked inside a long iteration: their stack is the one
// that made the blocking call, and it cannot change while they sleep, so
// reading it from /proc now is exact. Each block episode (the iteration's
// last run-state change) is captured once; later scans extend it.
void Detector::capture_blocks(std::uint64_t now_ns) {
  const std::uint64_t after_ns = evidence_after_ns();
  for (const ls_loop& l : loops_) {
    if (!l.iter_start_ns || l.run_state != LS_BLOCKED || now_ns < l.last_ts_ns || now_ns < l.iter_start_ns ||
        now_ns - l.iter_start_ns < after_ns || !watched(l.tgid))
      continue;
    BlockSeen& b = blocks_[l.tid];
    const bool same = b.iter_start_ns == l.iter_start_ns && b.block_start_ns == l.last_ts_ns;
    std::optional<StackSample> s;
    if (!same || !b.captured) {
      s = stacks_->blocked(l.tgid, l.tid);
      // Only if the thread slept through all the reads: the same episode
      // still going on afterwards. (It may have woken and gone back to
      // sleep elsewhere -- in epoll_wait, say -- since the scan.)
      const auto after = engine_.find_loop(l.tid);
      if (!after || after->iter_start_ns != l.iter_start_ns || after->last_ts_ns != l.last_ts_ns ||
          after->run_state != LS_BLOCKED)
        s.reset();
      b = {l.iter_start_ns, l.last_ts_ns, s.has_value()};
    }
    for (Correlator* c : consumers_)
      c->on_block(l.tgid, l.tid, l.iter_start_ns, l.last_ts_ns, now_ns - l.last_ts_ns, s ? &*s : nullptr);
  }
}

void Detector::set_sample_period_ns(std::uint64_t ns) {
  engine_.set_sample_period_ns(ns);
  sample_period_ms_ = static_cast<double>(ns) / 1e6;
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
      if (size >= sizeof(ls_new_proc_event)) {
        const ls_proc_state st = decide(hdr->tgid);
        engine_.set_proc_state(hdr->tgid, st);
        if (st == LS_PROC_WATCH) watch_gc(hdr->tgid);
        identify_framework_now(hdr->tgid, hdr->tid);
      }
      break;
    case LS_EV_STALL:
      if (size >= sizeof(ls_stall_event)) {
        const auto& e = *static_cast<const ls_stall_event*>(data);
        identify_framework_now(e.loop.tgid, e.loop.tid);
        for (Correlator* c : consumers_) c->on_stall(e);
      }
      break;
    case LS_EV_LOOP_EXIT:
      if (size >= sizeof(ls_stall_event)) {
        const auto& e = *static_cast<const ls_stall_event*>(data);
        for (Correlator* c : consumers_) c->on_loop_exit(e);
        blocks_.erase(e.loop.tid);
        if (auto it = py_threads_.find(e.loop.tid); it != py_threads_.end()) {
          if (it->second.registered) engine_.forget_py_thread(e.loop.tid);
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
  for (std::uint32_t pid : engine_.pending_procs()) {
    const ls_proc_state st = decide(pid);
    engine_.set_proc_state(pid, st);
    if (st == LS_PROC_WATCH) watch_gc(pid);
  }
  for (std::uint32_t pid : engine_.known_procs()) {
    if (process_exists(pid)) continue;
    engine_.forget_proc(pid);
    stacks_->forget(pid);
    for (Correlator* c : consumers_) c->forget_process(pid);
  }
  // Records of threads that are no longer loops (their exit event was lost).
  std::unordered_set<std::uint32_t> live;
  for (const ls_loop& l : loops_) live.insert(l.tid);
  std::erase_if(blocks_, [&](const auto& kv) { return !live.count(kv.first); });
  std::erase_if(py_threads_, [&](const auto& kv) {
    if (live.count(kv.first)) return false;
    if (kv.second.registered) engine_.forget_py_thread(kv.first);
    return true;
  });
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
    const std::uint64_t t = engine_.scan_loops(loops_);
    register_python_threads(t);
    check_exiting(t);
    capture_blocks(t);
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
  const std::uint64_t t = engine_.scan_loops(loops_);
  c.flush_ongoing(loops_, t);
  account_drops();
}

}  // namespace loopstall
