#include "loopstall/stall.hpp"

namespace loopstall {

std::string_view to_string(LoopKind k) {
  switch (k) {
    case LoopKind::Gevent: return "gevent";
    case LoopKind::Asyncio: return "asyncio";
    case LoopKind::Uvloop: return "uvloop";
    case LoopKind::Eventlet: return "eventlet";
    case LoopKind::Twisted: return "twisted";
    case LoopKind::Python: return "python";
    case LoopKind::Epoll: return "epoll";
  }
  return "epoll";
}

std::string_view to_string(Cause c) {
  switch (c) {
    case Cause::Cpu: return "cpu";
    case Cause::BlockingSyscall: return "blocking_syscall";
    case Cause::Runqueue: return "runqueue";
    case Cause::Gc: return "gc";
  }
  return "cpu";
}

Cause classify_cause(const Breakdown& b) {
  // gc is part of on_cpu: compare the CPU time outside GC with GC itself.
  const double cpu = b.on_cpu_ms > b.gc_ms ? b.on_cpu_ms - b.gc_ms : 0;
  Cause best = Cause::Cpu;
  double max = cpu;
  if (b.blocked_ms > max) {
    best = Cause::BlockingSyscall;
    max = b.blocked_ms;
  }
  if (b.runqueue_ms > max) {
    best = Cause::Runqueue;
    max = b.runqueue_ms;
  }
  if (b.gc_ms > max) {
    best = Cause::Gc;
  }
  return best;
}

std::string culprit_summary(const StallReport& r) {
  std::string s = std::string(to_string(r.cause));
  if (!r.syscalls.empty()) s += " in " + r.syscalls.front().name;
  if (!r.python_stacks.empty() && !r.python_stacks.front().frames.empty())
    s += " at " + r.python_stacks.front().frames.front().function;
  return s;
}

}  // namespace loopstall
