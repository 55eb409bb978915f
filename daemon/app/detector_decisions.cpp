// The Detector's decisions about processes: which ones are watched (asked
// by BPF, or decided ahead when a consumer starts), the loops adopted with
// each, GC probes, and processes that are gone.
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "loopstall/clock.hpp"
#include "loopstall/detector.hpp"
#include "loopstall/frameworks.hpp"
#include "loopstall/loop_adoption.hpp"
#include "loopstall/procfs.hpp"
#include "loopstall/procinfo.hpp"

namespace loopstall {

void Detector::reclassify(Correlator& c) {
  for (std::uint32_t pid : process_ids()) {
    // A process another consumer watches (a capture started on the daemon):
    // what it read is current (an exec makes BPF ask again), the kernel
    // watches the process, its GC probes are attached and its loops adopted.
    // Nothing is read from /proc again.
    if (const Correlator* other = watcher_besides(c, pid)) {
      c.classify(pid, *other->known_process(pid), other->naming());
      continue;
    }
    if (c.classify(pid) != LS_PROC_WATCH) continue;
    // The entry written here means BPF never asks about the process: every
    // other consumer decides about it now too.
    for (Correlator* other : consumers_)
      if (other != &c && !other->watches(pid)) other->classify(pid);
    engine_->insert_proc_state(pid, LS_PROC_WATCH);
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
    if (engine_->is_loop(tid)) continue;
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
    if (!init || !engine_->adopt_loop(*init)) continue;
    // A running loop's frames as just read are its first evidence (a
    // blocked one's stacks are read exactly by the next scan).
    if (init->run_state == LS_RUNNING && !py.empty()) {
      StackSample s;
      s.python = std::move(py);
      share(s, [&](Correlator& c, StackSample v) { c.on_sample(pid, tid, init->iter_start_ns, std::move(v)); });
    }
  }
}

void Detector::apply_decision(std::uint32_t pid, ls_proc_state st) {
  engine_->set_proc_state(pid, st);
  if (st == LS_PROC_WATCH) {
    watch_gc(pid);
    adopt_loops(pid);
  } else {
    engine_->release_loops(pid);
  }
}

// CPython's GC probes live in the executable or in libpython: attach the
// file's (once per file, for every process mapping it).
void Detector::watch_gc(std::uint32_t pid) {
  for (const Correlator* c : consumers_) {
    const ProcInfo* p = c->known_process(pid);
    if (!p || !p->python) continue;
    const std::string root = "/proc/" + std::to_string(pid) + "/root";
    if (!p->libpython.empty()) engine_->attach_gc_probes(root + p->libpython);
    if (!p->exe.empty()) engine_->attach_gc_probes(root + std::string(strip_deleted(p->exe)));
    return;
  }
}

ls_proc_state Detector::decide(std::uint32_t pid) {
  ls_proc_state st = LS_PROC_IGNORE;
  for (Correlator* c : consumers_)
    if (c->classify(pid) == LS_PROC_WATCH) st = LS_PROC_WATCH;
  return st;
}

// Processes that are gone: BPF deleted their procs entry at exit already,
// so what userspace knows is the list to check.
void Detector::forget_gone_processes() {
  std::unordered_set<std::uint32_t> pids;
  for (std::uint32_t pid : engine_->known_procs()) pids.insert(pid);
  for (const Correlator* c : consumers_) c->known_pids(pids);
  for (const auto& [tid, seen] : py_threads_) pids.insert(seen.pid);
  for (std::uint32_t pid : pids) {
    if (process_exists(pid)) continue;
    engine_->forget_proc(pid);
    stacks_->forget(pid);
    for (Correlator* c : consumers_) c->forget_process(pid);
  }
}

}  // namespace loopstall
