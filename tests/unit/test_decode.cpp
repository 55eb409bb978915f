// decode_iteration / make_stall_id: BPF loop state -> timing of one iteration.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>

#include "loopstall/decode.hpp"
#include "test_util.hpp"

using namespace loopstall;
using namespace loopstall::test;

namespace {

constexpr std::uint64_t T0 = 1'000 * kSec;  // an iteration start far from 0

double breakdown_sum(const Breakdown& b) {
  return b.on_cpu_ms + b.blocked_ms + b.runqueue_ms;
}

const SyscallTime* find_sc(const IterationTiming& t, int nr) {
  for (const auto& s : t.syscalls)
    if (s.nr == nr) return &s;
  return nullptr;
}

// Sane for any input: finite, non-negative, no component above the duration
// unless the snapshot itself said so, a bounded syscall list.
void check_sane(const IterationTiming& t) {
  for (double v :
       {t.duration_ms, t.breakdown.on_cpu_ms, t.breakdown.blocked_ms, t.breakdown.runqueue_ms, t.breakdown.gc_ms}) {
    CHECK(std::isfinite(v));
    CHECK(v >= 0.0);
  }
  CHECK(t.breakdown.gc_ms <= t.breakdown.on_cpu_ms);
  // LS_MAX_SYSCALLS slots + the overflow slot + the one the thread is in now.
  CHECK(t.syscalls.size() <= LS_MAX_SYSCALLS + 2);
  for (const auto& s : t.syscalls) {
    CHECK(std::isfinite(s.ms));
    CHECK(s.ms >= 0.0);
    CHECK_FALSE(s.name.empty());
  }
  for (std::size_t i = 1; i < t.syscalls.size(); ++i) CHECK(t.syscalls[i - 1].ms >= t.syscalls[i].ms);
}

}  // namespace

TEST_CASE("decode: finished iteration") {
  ls_loop l = make_loop(101, 100, T0);
  // 250 ms = 95 on CPU (20 of them GC) + 125 blocked + 30 runnable.
  l.on_cpu_ns = 95 * kMs;
  l.gc_ns = 20 * kMs;
  l.blocked_ns = 125 * kMs;
  l.runq_ns = 30 * kMs;
  add_slot(l, 0, 2, 20 * kMs);     // read
  add_slot(l, 202, 1, 100 * kMs);  // futex
  l.syscalls[LS_MAX_SYSCALLS] = {LS_SYSCALL_OTHER, 3, 5 * kMs};
  // State left over from the last switch: must be ignored for a finished one.
  l.run_state = LS_BLOCKED;
  l.cur_syscall = 230;
  l.last_ts_ns = T0 + 200 * kMs;

  const IterationTiming t = decode_iteration(l, T0 + 250 * kMs, false);

  CHECK(t.duration_ms == doctest::Approx(250.0));
  CHECK(t.breakdown.on_cpu_ms == doctest::Approx(95.0));
  CHECK(t.breakdown.blocked_ms == doctest::Approx(125.0));
  CHECK(t.breakdown.runqueue_ms == doctest::Approx(30.0));
  CHECK(t.breakdown.gc_ms == doctest::Approx(20.0));
  CHECK(breakdown_sum(t.breakdown) == doctest::Approx(t.duration_ms));

  REQUIRE(t.syscalls.size() == 3);
  CHECK(t.syscalls[0].name == "futex");
  CHECK(t.syscalls[0].nr == 202);
  CHECK(t.syscalls[0].ms == doctest::Approx(100.0));
  CHECK(t.syscalls[0].count == 1);
  CHECK(t.syscalls[1].name == "read");
  CHECK(t.syscalls[1].nr == 0);
  CHECK(t.syscalls[1].ms == doctest::Approx(20.0));
  CHECK(t.syscalls[1].count == 2);
  CHECK(t.syscalls[2].name == "other");
  CHECK(t.syscalls[2].nr == LS_SYSCALL_OTHER);
  CHECK(t.syscalls[2].ms == doctest::Approx(5.0));
  CHECK(t.syscalls[2].count == 3);
  CHECK(find_sc(t, 230) == nullptr);  // cur_syscall of a finished iteration is history
}

TEST_CASE("decode: syscalls are sorted by blocked time, the overflow slot takes its place by time") {
  ls_loop l = make_loop(1, 1, T0);
  add_slot(l, 0, 1, 1 * kMs);
  add_slot(l, 1, 1, 7 * kMs);
  add_slot(l, 7, 1, 3 * kMs);
  l.syscalls[LS_MAX_SYSCALLS] = {LS_SYSCALL_OTHER, 9, 50 * kMs};
  l.blocked_ns = 61 * kMs;
  const IterationTiming t = decode_iteration(l, T0 + 61 * kMs, false);
  REQUIRE(t.syscalls.size() == 4);
  CHECK(t.syscalls[0].name == "other");
  CHECK(t.syscalls[1].nr == 1);
  CHECK(t.syscalls[2].nr == 7);
  CHECK(t.syscalls[3].nr == 0);
}

TEST_CASE("decode: an empty overflow slot is not reported") {
  ls_loop l = make_loop(1, 1, T0);
  l.on_cpu_ns = 10 * kMs;
  const IterationTiming t = decode_iteration(l, T0 + 10 * kMs, false);
  CHECK(t.syscalls.empty());
  CHECK(t.duration_ms == doctest::Approx(10.0));
}

TEST_CASE("decode: gc is clamped to on-CPU time") {
  ls_loop l = make_loop(1, 1, T0);
  l.on_cpu_ns = 10 * kMs;
  l.gc_ns = 40 * kMs;  // torn: a GC pass accounted before the switch
  l.blocked_ns = 30 * kMs;
  const IterationTiming t = decode_iteration(l, T0 + 40 * kMs, false);
  CHECK(t.breakdown.gc_ms == doctest::Approx(10.0));
  CHECK(t.breakdown.on_cpu_ms == doctest::Approx(10.0));
}

TEST_CASE("decode: ongoing iteration, RUNNING adds the pending time to on_cpu") {
  ls_loop l = make_loop(1, 1, T0);
  l.on_cpu_ns = 30 * kMs;
  l.blocked_ns = 15 * kMs;
  l.runq_ns = 5 * kMs;
  add_slot(l, 202, 1, 15 * kMs);
  l.last_ts_ns = T0 + 50 * kMs;
  l.run_state = LS_RUNNING;

  const IterationTiming t = decode_iteration(l, T0 + 200 * kMs, true);
  CHECK(t.duration_ms == doctest::Approx(200.0));
  CHECK(t.breakdown.on_cpu_ms == doctest::Approx(180.0));
  CHECK(t.breakdown.blocked_ms == doctest::Approx(15.0));
  CHECK(t.breakdown.runqueue_ms == doctest::Approx(5.0));
  CHECK(breakdown_sum(t.breakdown) == doctest::Approx(t.duration_ms));
  REQUIRE(t.syscalls.size() == 1);
  CHECK(t.syscalls[0].ms == doctest::Approx(15.0));  // not blocked now: untouched
  CHECK(t.syscalls[0].count == 1);
}

TEST_CASE("decode: ongoing iteration, BLOCKED adds to blocked and to the current syscall's slot") {
  ls_loop l = make_loop(1, 1, T0);
  l.on_cpu_ns = 40 * kMs;
  l.blocked_ns = 10 * kMs;
  add_slot(l, 0, 4, 2 * kMs);    // read
  add_slot(l, 202, 1, 8 * kMs);  // futex
  l.last_ts_ns = T0 + 50 * kMs;

  SUBCASE("existing slot") {
    l.run_state = LS_BLOCKED;
    l.cur_syscall = 202;
    const IterationTiming t = decode_iteration(l, T0 + 200 * kMs, true);
    CHECK(t.duration_ms == doctest::Approx(200.0));
    CHECK(t.breakdown.blocked_ms == doctest::Approx(160.0));
    CHECK(t.breakdown.on_cpu_ms == doctest::Approx(40.0));
    CHECK(breakdown_sum(t.breakdown) == doctest::Approx(t.duration_ms));
    REQUIRE(t.syscalls.size() == 2);
    CHECK(t.syscalls[0].name == "futex");
    CHECK(t.syscalls[0].ms == doctest::Approx(158.0));
    CHECK(t.syscalls[0].count == 2);
    CHECK(t.syscalls[1].name == "read");
    CHECK(t.syscalls[1].count == 4);
  }
  SUBCASE("slot created when missing") {
    l.run_state = LS_BLOCKED;
    l.cur_syscall = 230;  // clock_nanosleep
    const IterationTiming t = decode_iteration(l, T0 + 200 * kMs, true);
    CHECK(t.breakdown.blocked_ms == doctest::Approx(160.0));
    REQUIRE(t.syscalls.size() == 3);
    CHECK(t.syscalls[0].name == "clock_nanosleep");
    CHECK(t.syscalls[0].nr == 230);
    CHECK(t.syscalls[0].ms == doctest::Approx(150.0));
    CHECK(t.syscalls[0].count == 1);
    CHECK(t.syscalls[1].name == "futex");
    CHECK(t.syscalls[1].ms == doctest::Approx(8.0));
  }
  SUBCASE("blocked outside a syscall") {
    l.run_state = LS_BLOCKED;
    l.cur_syscall = LS_SYSCALL_NONE;
    const IterationTiming t = decode_iteration(l, T0 + 200 * kMs, true);
    REQUIRE(t.syscalls.size() == 3);
    CHECK(t.syscalls[0].name == "unknown");
    CHECK(t.syscalls[0].ms == doctest::Approx(150.0));
  }
  SUBCASE("every slot used: the current syscall still gets its time") {
    ls_loop full = make_loop(1, 1, T0);
    for (int i = 0; i < LS_MAX_SYSCALLS; ++i) add_slot(full, i, 1, 1 * kMs);
    full.syscalls[LS_MAX_SYSCALLS] = {LS_SYSCALL_OTHER, 2, 2 * kMs};
    full.blocked_ns = (LS_MAX_SYSCALLS + 2) * kMs;
    full.last_ts_ns = T0 + full.blocked_ns;
    full.run_state = LS_BLOCKED;
    full.cur_syscall = 232;  // epoll_wait: not in any slot
    const IterationTiming t = decode_iteration(full, T0 + full.blocked_ns + 100 * kMs, true);
    CHECK(t.syscalls.size() == LS_MAX_SYSCALLS + 2);
    CHECK(t.syscalls[0].name == "epoll_wait");
    CHECK(t.syscalls[0].ms == doctest::Approx(100.0));
    CHECK(breakdown_sum(t.breakdown) == doctest::Approx(t.duration_ms));
  }
}

TEST_CASE("decode: ongoing iteration, RUNNABLE adds the pending time to runqueue") {
  ls_loop l = make_loop(1, 1, T0);
  l.on_cpu_ns = 20 * kMs;
  l.runq_ns = 10 * kMs;
  l.last_ts_ns = T0 + 30 * kMs;
  l.run_state = LS_RUNNABLE;
  const IterationTiming t = decode_iteration(l, T0 + 130 * kMs, true);
  CHECK(t.duration_ms == doctest::Approx(130.0));
  CHECK(t.breakdown.runqueue_ms == doctest::Approx(110.0));
  CHECK(t.breakdown.on_cpu_ms == doctest::Approx(20.0));
  CHECK(t.breakdown.blocked_ms == doctest::Approx(0.0));
  CHECK(breakdown_sum(t.breakdown) == doctest::Approx(t.duration_ms));
  CHECK(t.syscalls.empty());
}

TEST_CASE("decode: a finished iteration ignores the run state") {
  ls_loop l = make_loop(1, 1, T0);
  l.on_cpu_ns = 20 * kMs;
  l.last_ts_ns = T0 + 20 * kMs;
  l.run_state = LS_RUNNABLE;
  const IterationTiming t = decode_iteration(l, T0 + 20 * kMs, false);
  CHECK(t.breakdown.runqueue_ms == doctest::Approx(0.0));
  CHECK(t.breakdown.on_cpu_ms == doctest::Approx(20.0));
}

TEST_CASE("decode: torn and garbage snapshots") {
  SUBCASE("last_ts before iter_start (fields of the previous iteration)") {
    ls_loop l = make_loop(1, 1, T0);
    l.last_ts_ns = T0 - 5 * kSec;
    l.run_state = LS_RUNNING;
    const IterationTiming t = decode_iteration(l, T0 + 150 * kMs, true);
    check_sane(t);
    CHECK(t.duration_ms == doctest::Approx(150.0));
    CHECK(t.breakdown.on_cpu_ms <= t.duration_ms);  // not the 5 s since the stale last_ts
  }
  SUBCASE("last_ts after end (snapshot newer than the scan time)") {
    ls_loop l = make_loop(1, 1, T0);
    l.on_cpu_ns = 150 * kMs;
    l.last_ts_ns = T0 + 150 * kMs;
    const IterationTiming t = decode_iteration(l, T0 + 100 * kMs, true);
    check_sane(t);
    CHECK(t.duration_ms == doctest::Approx(100.0));
    CHECK(t.breakdown.on_cpu_ms == doctest::Approx(150.0));  // nothing added, nothing wrapped
  }
  SUBCASE("end before iter_start") {
    ls_loop l = make_loop(1, 1, T0);
    l.run_state = LS_BLOCKED;
    l.cur_syscall = 202;
    for (bool ongoing : {false, true}) {
      const IterationTiming t = decode_iteration(l, T0 - 3 * kSec, ongoing);
      check_sane(t);
      CHECK(t.duration_ms == doctest::Approx(0.0));
      CHECK(t.breakdown.blocked_ms == doctest::Approx(0.0));
      CHECK(t.syscalls.empty());
    }
  }
  SUBCASE("iter_start 0 and end 0") {
    ls_loop l = make_loop(1, 1, 0);
    const IterationTiming t = decode_iteration(l, 0, true);
    check_sane(t);
    CHECK(t.duration_ms == 0.0);
  }
  SUBCASE("nsyscalls beyond the array never reads past the slots") {
    ls_loop l = make_loop(1, 1, T0);
    for (int i = 0; i < LS_MAX_SYSCALLS; ++i) add_slot(l, 10 + i, 1, kMs);
    l.syscalls[LS_MAX_SYSCALLS] = {LS_SYSCALL_OTHER, 1, kMs};
    // What follows the slots in memory would decode as nr 0x777 count 5.
    l.iterations = (5ULL << 32) | 0x777;
    for (auto& h : l.hist) h = (5ULL << 32) | 0x777;
    for (std::uint32_t n :
         {std::uint32_t{LS_MAX_SYSCALLS + 1}, std::uint32_t{1000}, std::numeric_limits<std::uint32_t>::max()}) {
      CAPTURE(n);
      l.nsyscalls = n;
      const IterationTiming t = decode_iteration(l, T0 + 100 * kMs, false);
      check_sane(t);
      CHECK(t.syscalls.size() == LS_MAX_SYSCALLS + 1);
      CHECK(find_sc(t, 0x777) == nullptr);
      CHECK(find_sc(t, 5) == nullptr);
    }
  }
  SUBCASE("unknown run state counts as on CPU") {
    ls_loop l = make_loop(1, 1, T0);
    l.run_state = 77;
    const IterationTiming t = decode_iteration(l, T0 + 100 * kMs, true);
    check_sane(t);
    CHECK(t.breakdown.on_cpu_ms == doctest::Approx(100.0));
    CHECK(breakdown_sum(t.breakdown) == doctest::Approx(t.duration_ms));
  }
  SUBCASE("garbage syscall numbers get a name") {
    ls_loop l = make_loop(1, 1, T0);
    add_slot(l, std::numeric_limits<int>::min(), 1, kMs);
    l.run_state = LS_BLOCKED;
    l.cur_syscall = std::numeric_limits<int>::max();
    const IterationTiming t = decode_iteration(l, T0 + 100 * kMs, true);
    check_sane(t);
    REQUIRE(t.syscalls.size() == 2);
    CHECK(t.syscalls[0].name == "syscall_2147483647");
    CHECK(t.syscalls[1].name == "syscall_-2147483648");
  }
  SUBCASE("huge timestamps do not overflow") {
    ls_loop l = make_loop(1, 1, std::numeric_limits<std::uint64_t>::max() - 10 * kMs);
    l.last_ts_ns = l.iter_start_ns;
    const IterationTiming t = decode_iteration(l, std::numeric_limits<std::uint64_t>::max(), true);
    check_sane(t);
    CHECK(t.duration_ms == doctest::Approx(10.0));
    CHECK(t.breakdown.on_cpu_ms == doctest::Approx(10.0));
  }
}

TEST_CASE("make_stall_id is stable and distinct per (tid, start)") {
  CHECK(make_stall_id(42, 123456789) == make_stall_id(42, 123456789));
  CHECK_FALSE(make_stall_id(42, 0).empty());
  CHECK(make_stall_id(42, 1) != make_stall_id(43, 1));
  CHECK(make_stall_id(42, 1) != make_stall_id(42, 2));

  // No two pairs that could be confused when concatenated.
  std::set<std::string> ids;
  std::size_t n = 0;
  for (std::uint32_t tid : {1u, 2u, 12u, 21u, 123u, 4294967295u}) {
    for (std::uint64_t start : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x12}, std::uint64_t{0x123},
                                std::uint64_t{0x2123}, std::uint64_t{1'000'000'000}, ~std::uint64_t{0}}) {
      ids.insert(make_stall_id(tid, start));
      ++n;
    }
  }
  CHECK(ids.size() == n);
  // The largest values fit (no truncation merging two ids).
  CHECK(make_stall_id(4294967295u, ~std::uint64_t{0}) != make_stall_id(4294967295u, ~std::uint64_t{0} - 1));
}
