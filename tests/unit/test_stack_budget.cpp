// Which stall stacks the Detector reads in a storm: each loop's first and
// longest stalls before repeats, and what is skipped is counted.
#include <doctest/doctest.h>

#include "loopstall/stack_budget.hpp"
#include "test_util.hpp"

using namespace loopstall;
using test::kMs;
using test::kSec;
using Skip = StackBudget::Skip;

TEST_CASE("stack budget: with repeats skipped, a loop's first stalls, the first repeat and its longest are read") {
  StackBudget b;
  b.set_policy({10 * kSec, 2, true});
  std::uint64_t now = 100 * kSec;
  CHECK(b.judge(7, 60 * kMs, now) == Skip::None);  // never seen: its first stall
  b.on_stall(7, 150 * kMs, now);
  CHECK(b.judge(7, 60 * kMs, now) == Skip::None);  // the second is still within keep_first
  b.on_stall(7, 150 * kMs, now);
  CHECK(b.judge(7, 60 * kMs, now) == Skip::None);  // and one more: the first repeat coalesced
  b.on_stall(7, 150 * kMs, now);
  CHECK(b.judge(7, 60 * kMs, now) == Skip::Repeat);
  CHECK(b.judge(7, 140 * kMs, now) == Skip::Repeat);
  CHECK(b.judge(7, 160 * kMs, now) == Skip::None);  // already longer than the loop's longest
  CHECK(b.judge(8, 60 * kMs, now) == Skip::None);   // another loop
  for (int i = 0; i < 20; ++i) b.on_stall(7, 150 * kMs, now += 200 * kMs);
  // The next window follows one with repeats: only its first two stalls are read.
  now += 10 * kSec;
  CHECK(b.judge(7, 60 * kMs, now) == Skip::None);
  b.on_stall(7, 150 * kMs, now);
  CHECK(b.judge(7, 60 * kMs, now) == Skip::None);
  b.on_stall(7, 150 * kMs, now);
  CHECK(b.judge(7, 60 * kMs, now) == Skip::Repeat);
  b.skipped(Skip::Repeat, StackBudget::Evidence::Sample);
  CHECK(b.skipped_repeat() == 1);
  CHECK(b.skipped_budget() == 0);
  b.keep_only({8});
  CHECK(b.judge(7, 60 * kMs, now) == Skip::None);  // forgotten: its first stall again
}

TEST_CASE("stack budget: over the rate, repeats go first; first and longest keep the rest") {
  StackBudget b;  // repeats are read while the bucket allows (coalescing off)
  std::uint64_t now = 100 * kSec;
  for (int i = 0; i < 10; ++i) b.on_stall(7, 150 * kMs, now);
  int repeats = 0, firsts = 0;
  // Far over the rate within one second: a storm.
  for (int i = 0; i < 1000; ++i)
    if (b.judge(7, 60 * kMs, now) == Skip::None) b.read(), ++repeats;
  for (int i = 0; i < 1000; ++i)
    if (b.judge(static_cast<std::uint32_t>(1000 + i), 60 * kMs, now) == Skip::None) b.read(), ++firsts;
  CHECK(repeats == StackBudget::kReadsPerSec - StackBudget::kRepeatReserve + 1);
  CHECK(firsts == StackBudget::kRepeatReserve - 1);
  CHECK(b.judge(9, 60 * kMs, now) == Skip::Budget);
  // Both metrics of budget skips come from these counts: all kinds, and samples alone.
  b.skipped(Skip::Budget, StackBudget::Evidence::Sample);
  b.skipped(Skip::Budget, StackBudget::Evidence::Blocked);
  CHECK(b.skipped_budget() == 2);
  CHECK(b.samples_skipped_budget() == 1);
  now += kSec;  // refilled
  CHECK(b.judge(9, 60 * kMs, now) == Skip::None);
}
