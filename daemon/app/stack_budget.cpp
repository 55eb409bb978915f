#include "loopstall/stack_budget.hpp"

#include <algorithm>

namespace loopstall {

// The stalls a coalescing event log writes one by one, and one more: the
// first repeat it folds, so that its summary has stacks to show. While the
// repeats go on, two a window (its windows and the log's are not aligned).
std::uint32_t StackBudget::allowance(const LoopWindow& w) const {
  return w.storming ? 2 : policy_.keep_first + 1;
}

void StackBudget::roll(LoopWindow& w, std::uint64_t now_ns) const {
  if (now_ns < w.start_ns + policy_.window_ns) return;
  w.storming = w.stalls > allowance(w);
  w.start_ns = now_ns;
  w.stalls = 0;
  w.longest_ns = 0;
}

void StackBudget::on_stall(std::uint32_t tid, std::uint64_t dur_ns, std::uint64_t now_ns) {
  auto [it, fresh] = loops_.try_emplace(tid);
  LoopWindow& w = it->second;
  if (fresh)
    w.start_ns = now_ns;
  else
    roll(w, now_ns);
  ++w.stalls;
  w.longest_ns = std::max(w.longest_ns, dur_ns);
}

StackBudget::Skip StackBudget::judge(std::uint32_t tid, std::uint64_t age_ns, std::uint64_t now_ns) {
  if (now_ns > refill_ns_) {
    tokens_ = std::min(kReadsPerSec, tokens_ + static_cast<double>(now_ns - refill_ns_) / 1e9 * kReadsPerSec);
    refill_ns_ = now_ns;
  }
  bool first_or_longest = true;
  if (auto it = loops_.find(tid); it != loops_.end()) {
    roll(it->second, now_ns);
    const LoopWindow& w = it->second;
    first_or_longest = w.stalls < allowance(w) || age_ns > w.longest_ns;
  }
  if (!first_or_longest && policy_.skip_repeats) return Skip::Repeat;
  return tokens_ >= (first_or_longest ? 1 : kRepeatReserve) ? Skip::None : Skip::Budget;
}

void StackBudget::skipped(Skip why, Evidence what) {
  if (why == Skip::Repeat) ++skipped_repeat_;
  if (why == Skip::Budget) {
    ++skipped_budget_;
    samples_skipped_budget_ += what == Evidence::Sample;
  }
}

void StackBudget::keep_only(const std::unordered_set<std::uint32_t>& live_tids) {
  std::erase_if(loops_, [&](const auto& kv) { return !live_tids.count(kv.first); });
}

}  // namespace loopstall
