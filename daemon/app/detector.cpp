#include "loopstall/detector.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "loopstall/clock.hpp"
#include "loopstall/frameworks.hpp"
#include "loopstall/loop_adoption.hpp"
#include "loopstall/procinfo.hpp"

namespace loopstall {
namespace {

constexpr std::uint64_t kSweepNs = 2'000'000'000ULL;
constexpr std::uint64_t kScanNs = Detector::kScanIntervalMs * 1'000'000ULL;

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
  // A capture counts from its own start, not from when the loops began.
  engine_.scan_loops(loops_);
  c.set_baseline(loops_);
  reclassify(c);
}

void Detector::reclassify(Correlator& c) {
  for (std::uint32_t pid : process_ids()) {
    if (c.classify(pid) != LS_PROC_WATCH) continue;
    // The entry written here means BPF never asks about the process: every
    // other consumer decides about it now too.
    for (Correlator* other : consumers_)
      if (other != &c && !other->watches(pid)) other->classify(pid);
    engine_.insert_proc_state(pid, LS_PROC_WATCH);
    watch_gc(pid);
    adopt_loops(pid);
  }
}

void Detector::adopt_loops(std::uint32_t pid) {
  bool gevent = false, loop_module = false;
  for (const Correlator* c : consumers_)
    if (const ProcInfo* p = c->known_process(pid))
      gevent |= p->native_loop == LoopKind::Gevent, loop_module |= p->loop_module;
  const std::uint64_t now = monotonic_ns();
  for (std::uint32_t tid : task_ids(pid)) {
    if (engine_.is_loop(tid)) continue;
    const auto a = thread_activity(pid, tid);
    if (!a) continue;
    // Only the main thread is taken for a loop mid-iteration, and only on
    // the evidence of its Python frames: a thread parked in a join or a
    // queue must not become a hung loop.
    std::vector<PyFrame> py;
    bool in_loop = false;
    if (tid == pid && loop_module && !is_epoll_wait_syscall(a->syscall)) {
      py = stacks_->python_frames(pid, tid);
      in_loop = frames_run_a_loop(py, gevent);
      if (in_loop) name_framework(pid, py);
    }
    const auto init = adoption_state(pid, tid, *a, in_loop, now);
    if (!init || !engine_.adopt_loop(*init)) continue;
    // A running loop's frames as just read are its first evidence (a
    // blocked one's stacks are read exactly by the next scan).
    if (init->run_state == LS_RUNNING && !py.empty()) {
      StackSample s;
      s.python = std::move(py);
      for (Correlator* c : consumers_) c->on_sample(pid, tid, init->iter_start_ns, s);
    }
  }
}

void Detector::apply_decision(std::uint32_t pid, ls_proc_state st) {
  engine_.set_proc_state(pid, st);
  if (st == LS_PROC_WATCH) {
    watch_gc(pid);
    adopt_loops(pid);
  } else {
    engine_.release_loops(pid);
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
    if (!framework_unknown(l.tgid)) return;  // modules settle it, or another read named it
    const auto s = stacks_->sleeping_python_frames(l.tgid, l.tid);
    const auto after = engine_.find_loop(l.tid);
    if (s && is_epoll_wait_syscall(static_cast<int>(s->syscall)) && after && after->run_state == LS_IDLE &&
        after->last_ts_ns == l.last_ts_ns && after->iterations == l.iterations) {
      seen.framework = loop_from_frames(s->frames);
    } else {
      // It woke meanwhile (a busy loop): soon again; no thread state (yet): later.
      seen.framework_retry_ns = now_ns + (s ? kRetryWokeNs : kRetryNs);
    }
  }
  if (seen.framework)
    for (Correlator* c : consumers_) c->set_stack_loop(l.tgid, *seen.framework);
}

// Whether a consumer watching the process does not know its framework yet
// (not settled by modules, not read from a stack).
bool Detector::framework_unknown(std::uint32_t pid) const {
  for (const Correlator* c : consumers_) {
    const ProcInfo* p = c->watches(pid) ? c->known_process(pid) : nullptr;
    if (p && !p->stack_loop && !decided_by_modules(p->native_loop)) return true;
  }
  return false;
}

// Frames read from a thread of the process at any moment (a sample, a
// block, adoption, a thread that just entered epoll_wait): a framework's
// loop frames are there only while its loop runs, so one seen names the
// framework at once -- a stall in the first iterations too. Finding none
// proves nothing (an eventlet app greenlet hides the hub's frames):
// identify_framework() alone concludes "python".
void Detector::name_framework(std::uint32_t pid, const std::vector<PyFrame>& frames) {
  if (frames.empty() || !framework_unknown(pid)) return;
  const auto k = loop_from_frames(frames);
  if (!k || *k == LoopKind::Python) return;
  for (Correlator* c : consumers_) c->set_stack_loop(pid, *k);
}

// A thread that has just entered epoll_wait: it asked for its process to be
// classified, or ended a stall.
void Detector::identify_framework_now(std::uint32_t pid, std::uint32_t tid) {
  if (framework_unknown(pid)) name_framework(pid, stacks_->python_frames(pid, tid));
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
  // Unwinding is the slow part of a poll: a backlog of samples must not
  // delay the scan that reports hung loops.
  scan_if_due();
  auto s = stacks_->on_cpu(e);
  if (!s) return;
  name_framework(e.hdr.tgid, s->python);
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
      if (s) name_framework(l.tgid, s->python);
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
        apply_decision(hdr->tgid, decide(hdr->tgid));
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

// Processes that are gone: BPF deleted their procs entry at exit already,
// so what userspace knows is the list to check.
void Detector::forget_gone_processes() {
  std::unordered_set<std::uint32_t> pids;
  for (std::uint32_t pid : engine_.known_procs()) pids.insert(pid);
  for (const Correlator* c : consumers_) c->known_pids(pids);
  for (const auto& [tid, seen] : py_threads_) pids.insert(seen.pid);
  for (std::uint32_t pid : pids) {
    if (process_exists(pid)) continue;
    engine_.forget_proc(pid);
    stacks_->forget(pid);
    for (Correlator* c : consumers_) c->forget_process(pid);
  }
}

// Decisions whose NEW_PROC event was lost, and processes that are gone.
void Detector::sweep() {
  for (std::uint32_t pid : engine_.pending_procs()) apply_decision(pid, decide(pid));
  forget_gone_processes();
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

void Detector::scan_if_due() {
  const std::uint64_t now = monotonic_ns();
  if (now < next_scan_ || scanning_) return;
  scanning_ = true;
  const std::uint64_t t = engine_.scan_loops(loops_);
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
  if (engine_.poll(std::max(timeout_ms, 0), handler_) < 0) return false;
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
    if (engine_.poll(0, handler_) <= 0) break;
  const std::uint64_t t = engine_.scan_loops(loops_);
  c.flush_ongoing(loops_, t);
  account_drops();
}

}  // namespace loopstall
