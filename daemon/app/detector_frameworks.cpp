// Naming a process's framework from Python stacks (frameworks.hpp), and the
// loop threads whose frames the BPF sampler walks itself.
#include "loopstall/detector.hpp"
#include "loopstall/frameworks.hpp"
#include "loopstall/loop_adoption.hpp"

namespace loopstall {

// The sampler copies Python frames itself once it knows the loop thread's
// thread state (a thread keeps its PyThreadState for life).
void Detector::register_python_threads(std::uint64_t now_ns) {
  constexpr std::uint64_t kRetryNs = 1'000'000'000ULL;
  for (const ls_loop& l : loops_) {
    if (!watched(l.tgid)) continue;
    auto [it, fresh] = py_threads_.try_emplace(l.tid);
    PyThreadSeen& seen = it->second;
    if (!fresh && seen.pid != l.tgid) {  // tid reused by another process
      if (seen.registered) engine_->forget_py_thread(l.tid);
      seen = {};
    }
    identify_framework(l, seen, now_ns);
    if (seen.registered || (seen.tried_ns && now_ns - seen.tried_ns < kRetryNs)) continue;
    seen.pid = l.tgid;
    seen.tried_ns = now_ns;
    if (auto t = stacks_->python_thread(l.tgid, l.tid)) {
      engine_->set_py_thread(l.tid, *t);
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
    const auto after = engine_->find_loop(l.tid);
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

}  // namespace loopstall
