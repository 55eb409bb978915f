// classify_cause: the largest of on-CPU outside GC, blocked, runnable-waiting, GC.
#include <doctest/doctest.h>

#include "loopstall/stall.hpp"

using namespace loopstall;

namespace {

Breakdown bd(double on_cpu, double blocked, double runq, double gc) {
  Breakdown b;
  b.on_cpu_ms = on_cpu;
  b.blocked_ms = blocked;
  b.runqueue_ms = runq;
  b.gc_ms = gc;
  return b;
}

}  // namespace

TEST_CASE("classify_cause: each cause") {
  CHECK(classify_cause(bd(200, 10, 10, 0)) == Cause::Cpu);
  CHECK(classify_cause(bd(10, 200, 10, 0)) == Cause::BlockingSyscall);
  CHECK(classify_cause(bd(10, 10, 200, 0)) == Cause::Runqueue);
  CHECK(classify_cause(bd(200, 10, 10, 190)) == Cause::Gc);
}

TEST_CASE("classify_cause: gc is part of on_cpu") {
  // cpu outside GC 30 < GC 70.
  CHECK(classify_cause(bd(100, 0, 0, 70)) == Cause::Gc);
  // cpu outside GC 70 > blocked 50 > GC 30.
  CHECK(classify_cause(bd(100, 50, 0, 30)) == Cause::Cpu);
  // cpu outside GC 55 and GC 45 < blocked 70, although on_cpu 100 > 70.
  CHECK(classify_cause(bd(100, 70, 0, 45)) == Cause::BlockingSyscall);
  // Runqueue beats both halves of a CPU-heavy iteration that is split evenly.
  CHECK(classify_cause(bd(100, 0, 55, 50)) == Cause::Runqueue);
  // GC larger than on_cpu (inconsistent input): CPU outside GC is 0, not negative.
  CHECK(classify_cause(bd(50, 0, 0, 80)) == Cause::Gc);
  CHECK(classify_cause(bd(50, 10, 0, 80)) == Cause::Gc);
}

TEST_CASE("classify_cause: ties go to the earlier of cpu, blocking_syscall, runqueue, gc") {
  CHECK(classify_cause(bd(0, 0, 0, 0)) == Cause::Cpu);
  CHECK(classify_cause(bd(50, 50, 0, 0)) == Cause::Cpu);
  CHECK(classify_cause(bd(0, 50, 50, 0)) == Cause::BlockingSyscall);
  CHECK(classify_cause(bd(50, 0, 50, 50)) == Cause::Runqueue);  // cpu outside GC 0
  CHECK(classify_cause(bd(100, 0, 0, 50)) == Cause::Cpu);       // 50 outside GC vs 50 GC
  CHECK(classify_cause(bd(100, 50, 50, 50)) == Cause::Cpu);     // four-way tie
}

TEST_CASE("cause and loop kind names are the schema's") {
  CHECK(to_string(Cause::Cpu) == "cpu");
  CHECK(to_string(Cause::BlockingSyscall) == "blocking_syscall");
  CHECK(to_string(Cause::Runqueue) == "runqueue");
  CHECK(to_string(Cause::Gc) == "gc");
  CHECK(to_string(LoopKind::Gevent) == "gevent");
  CHECK(to_string(LoopKind::Asyncio) == "asyncio");
  CHECK(to_string(LoopKind::Uvloop) == "uvloop");
  CHECK(to_string(LoopKind::Eventlet) == "eventlet");
  CHECK(to_string(LoopKind::Twisted) == "twisted");
  CHECK(to_string(LoopKind::Python) == "python");
  CHECK(to_string(LoopKind::Epoll) == "epoll");
}
