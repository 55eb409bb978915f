// Which stall stacks the Detector reads when loops stall faster than it can
// afford to read them (~0.1 ms an on-CPU sample, ~1 ms a blocked Python
// stack): a global rate, spent first on the evidence that matters -- each
// loop's first stalls of a window and any stall already longer than the
// loop's longest of the window -- and only then on repeats.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <unordered_set>

namespace loopstall {

class StackBudget {
 public:
  static constexpr double kReadsPerSec = 300;
  // Repeats are read only while this many reads are left in the bucket:
  // a storm of repeats cannot starve a first or a longest stall.
  static constexpr double kRepeatReserve = 100;

  struct Policy {
    std::uint64_t window_ns = 10'000'000'000ULL;
    // Stalls per loop and window that are never repeats: keep_first + 1 (in a
    // window that follows one with repeats, 2).
    std::uint32_t keep_first = 5;
    // Repeats are not read at all (the event log coalesces them: their
    // stacks would not be written).
    bool skip_repeats = false;
  };
  enum class Skip { None, Repeat, Budget };
  enum class Evidence { Sample, Blocked };  // an on-CPU sample, a blocked loop's stack

  void set_policy(const Policy& p) { policy_ = p; }
  const Policy& policy() const { return policy_; }
  // A final stall of loop thread tid: its iteration took dur_ns.
  void on_stall(std::uint32_t tid, std::uint64_t dur_ns, std::uint64_t now_ns);
  // Whether the stack of tid's iteration, age_ns old now, may be read.
  // Neither spends nor counts: read() and skipped() do.
  Skip judge(std::uint32_t tid, std::uint64_t age_ns, std::uint64_t now_ns);
  void read() { tokens_ -= 1; }
  void skipped(Skip why, Evidence what);
  // Loop threads that are gone.
  void keep_only(const std::unordered_set<std::uint32_t>& live_tids);

  // Stack reads skipped (an on-CPU sample, or a blocked loop's stack once
  // per block episode), by reason; cumulative.
  std::uint64_t skipped_repeat() const { return skipped_repeat_; }
  std::uint64_t skipped_budget() const { return skipped_budget_; }
  // Of skipped_budget(), the on-CPU samples.
  std::uint64_t samples_skipped_budget() const { return samples_skipped_budget_; }

 private:
  struct LoopWindow {
    std::uint64_t start_ns = 0, longest_ns = 0;
    std::uint32_t stalls = 0;
    bool storming = false;  // the last window had repeats: two first stalls in this one
  };
  std::uint32_t allowance(const LoopWindow& w) const;
  void roll(LoopWindow& w, std::uint64_t now_ns) const;

  Policy policy_;
  std::unordered_map<std::uint32_t, LoopWindow> loops_;  // by tid
  double tokens_ = kReadsPerSec;
  std::uint64_t refill_ns_ = 0;
  std::uint64_t skipped_repeat_ = 0, skipped_budget_ = 0, samples_skipped_budget_ = 0;
};

}  // namespace loopstall
