#include "loopstall/evidence.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

namespace loopstall {
namespace {

template <typename Counted, typename Frames>
void count_into(std::vector<Counted>& set, Frames&& frames, std::uint64_t n, std::size_t max_distinct) {
  for (auto& c : set) {
    if (c.frames == frames) {
      c.count += n;
      return;
    }
  }
  if (set.size() < max_distinct) set.push_back({std::forward<Frames>(frames), n});
}

}  // namespace

void StallEvidence::add_cpu_sample(StackSample s) {
  ++cpu_;
  if (!s.python.empty()) count_into(cpu_python_, std::move(s.python), 1, kMaxDistinctStacks);
  if (!s.native.empty()) count_into(cpu_native_, std::move(s.native), 1, kMaxDistinctStacks);
}

void StallEvidence::add_block(std::uint64_t block_start_ns, std::uint64_t blocked_ns,
                              std::optional<StackSample> stacks) {
  for (Block& b : blocks_) {
    if (b.start_ns == block_start_ns) {
      b.blocked_ns = std::max(b.blocked_ns, blocked_ns);
      if (stacks && b.stacks.empty()) b.stacks = std::move(*stacks);
      return;
    }
  }
  if (blocks_.size() >= kMaxBlocks) return;
  blocks_.push_back({block_start_ns, blocked_ns, stacks ? std::move(*stacks) : StackSample{}});
}

// Self is const StallEvidence& (copies the frames) or StallEvidence&&
// (moves them; with lent, notes where each stack came from).
template <typename Self>
void StallEvidence::fill_from(Self&& self, StallReport& r, double sample_period_ms, Lent* lent) {
  constexpr bool kMove = !std::is_const_v<std::remove_reference_t<Self>>;
  auto frames = [](auto& v) -> decltype(auto) {
    if constexpr (kMove)
      return std::move(v);
    else
      return std::as_const(v);
  };
  struct Stack {
    Counted<PyFrame> counted;
    decltype(&self.cpu_python_.front().frames) from;
  };
  std::vector<Stack> py;
  py.reserve(self.cpu_python_.size() + self.blocks_.size());
  for (auto& c : self.cpu_python_) py.push_back({{frames(c.frames), c.count}, &c.frames});
  for (auto& b : self.blocks_) {
    if (b.stacks.python.empty()) continue;
    const double periods = sample_period_ms > 0 ? static_cast<double>(b.blocked_ns) / 1e6 / sample_period_ms : 1;
    const auto weight = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(periods)));
    // An identical stack counts once (it keeps its frames; this block keeps its own).
    const auto same =
        std::find_if(py.begin(), py.end(), [&](const Stack& s) { return s.counted.frames == b.stacks.python; });
    if (same != py.end())
      same->counted.count += weight;
    else if (py.size() < kMaxDistinctStacks + kMaxBlocks)
      py.push_back({{frames(b.stacks.python), weight}, &b.stacks.python});
  }
  // Most samples first; equal counts keep the order first seen.
  std::stable_sort(py.begin(), py.end(),
                   [](const auto& a, const auto& b) { return a.counted.count > b.counted.count; });
  r.python_stacks.clear();
  for (auto& s : py) {
    r.python_stacks.push_back({s.counted.count, std::move(s.counted.frames)});
    if constexpr (kMove)
      if (lent) lent->python.push_back(s.from);
  }

  decltype(&self.blocks_.front()) longest = nullptr;
  for (auto& b : self.blocks_)
    if (!b.stacks.native.empty() && (!longest || b.blocked_ns > longest->blocked_ns)) longest = &b;
  decltype(&self.cpu_native_.front()) top = nullptr;
  for (auto& c : self.cpu_native_)
    if (!top || c.count > top->count) top = &c;
  r.native_stack.clear();
  decltype(&top->frames) native = nullptr;
  if (longest && (r.cause == Cause::BlockingSyscall || !top)) {
    native = &longest->stacks.native;
  } else if (top) {
    native = &top->frames;
  }
  if (native) r.native_stack = frames(*native);
  if constexpr (kMove)
    if (lent) lent->native = native;
}

void StallEvidence::lend(StallReport& r, double sample_period_ms) {
  lent_ = {};
  fill_from(*this, r, sample_period_ms, &lent_);
}

void StallEvidence::take_back(StallReport& r) {
  for (std::size_t i = 0; i < lent_.python.size() && i < r.python_stacks.size(); ++i)
    *lent_.python[i] = std::move(r.python_stacks[i].frames);
  if (lent_.native) *lent_.native = std::move(r.native_stack);
  lent_ = {};
}

void StallEvidence::fill(StallReport& r, double sample_period_ms) const& {
  fill_from(*this, r, sample_period_ms, nullptr);
}

void StallEvidence::fill(StallReport& r, double sample_period_ms) && {
  fill_from(std::move(*this), r, sample_period_ms, nullptr);
}

}  // namespace loopstall
