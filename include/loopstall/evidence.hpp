// What was seen of one stall while it ran: the loop thread's Python and
// native stacks from on-CPU samples and from captures while it was blocked.
// Turns them into the report's python_stacks and native_stack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "loopstall/stall.hpp"

namespace loopstall {

struct StackSample {
  std::vector<PyFrame> python;      // innermost first
  std::vector<NativeFrame> native;  // innermost first
  bool empty() const { return python.empty() && native.empty(); }
};

class StallEvidence {
 public:
  // Bounds: a 10 s hang sampled at 100 Hz must not grow without limit.
  static constexpr std::size_t kMaxDistinctStacks = 64;
  static constexpr std::size_t kMaxBlocks = 64;

  // One on-CPU sample.
  void add_cpu_sample(StackSample s);
  // A block episode (identified by when it began) seen still blocked,
  // blocked_ns so far. The first sighting carries its stacks; later ones
  // (nullopt) only extend it.
  void add_block(std::uint64_t block_start_ns, std::uint64_t blocked_ns, std::optional<StackSample> stacks);
  bool empty() const { return cpu_ == 0 && blocks_.empty(); }

  // python_stacks: identical stacks merged, most samples first. A block
  // counts as one sample per sample period it lasted (at least one), so
  // blocked and on-CPU time weigh the same. native_stack: the longest
  // block's for a blocked stall, else the most sampled on-CPU one.
  void fill(StallReport& r, double sample_period_ms) const&;
  // The same, moving the frames out (the final report: the evidence is
  // dropped after it, and a deep stack is hundreds of strings to copy).
  void fill(StallReport& r, double sample_period_ms) &&;
  // The same for a report used and dropped while the evidence goes on (an
  // ongoing report): the frames are lent to r, not copied, until
  // take_back(r) returns them. Nothing may be added in between.
  void lend(StallReport& r, double sample_period_ms);
  void take_back(StallReport& r);

 private:
  // Where lent frames came from: r.python_stacks[i] from python[i].
  struct Lent {
    std::vector<std::vector<PyFrame>*> python;
    std::vector<NativeFrame>* native = nullptr;
  };
  template <typename Self>
  static void fill_from(Self&& self, StallReport& r, double sample_period_ms, Lent* lent);
  template <typename Frame>
  struct Counted {
    std::vector<Frame> frames;
    std::uint64_t count = 0;
  };
  struct Block {
    std::uint64_t start_ns = 0, blocked_ns = 0;
    StackSample stacks;
  };
  std::vector<Counted<PyFrame>> cpu_python_;
  std::vector<Counted<NativeFrame>> cpu_native_;
  std::vector<Block> blocks_;
  std::uint64_t cpu_ = 0;  // samples seen
  Lent lent_;
};

}  // namespace loopstall
