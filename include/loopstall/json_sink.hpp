// JSON Lines: one stall-event object per line, flushed per line
// (docs/contract/stall-event.schema.json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "loopstall/sink.hpp"

namespace loopstall {

// The stall-event object, on one line without the newline; invalid UTF-8 in
// names and paths is replaced by U+FFFD. Lean (over the event log's byte
// budget): empty stacks, "stacks_omitted": true, exe cut to kLeanExeBytes.
void append_stall_json(std::string& out, const StallReport& r, bool lean = false);
inline constexpr std::size_t kLeanExeBytes = 256;
std::string stall_json(const StallReport& r);
// The same object as a tree (parsed back: the line above is its one writer).
nlohmann::ordered_json to_json(const StallReport& r);

// Bytes a line may take from the event log's budget: bytes_per_s, saved up
// to kBudgetBurstS seconds' worth. A stall whose line does not fit is still
// written, lean: the processes choose their names and stack depths, and
// repeats with a new culprit each time are not coalesced, so without this a
// local user could grow the log by MB/s with ~0.5 MB lines.
struct EventLogBudget {
  std::uint64_t bytes_per_s = 0;  // 0: no budget (a capture's own output)
  static constexpr std::uint64_t kBudgetBurstS = 30;
  double burst_bytes() const { return static_cast<double>(bytes_per_s * kBudgetBurstS); }
};

class JsonLinesSink : public Sink {
 public:
  using Clock = std::function<std::uint64_t()>;  // CLOCK_MONOTONIC ns
  explicit JsonLinesSink(Writer out, EventLogBudget budget = {}, Clock clock = nullptr);
  void stall(const StallReport& r) override;
  // Lines written lean because the budget was spent; cumulative.
  std::uint64_t stacks_omitted() const { return stacks_omitted_; }

 private:
  bool fits(std::size_t bytes);

  Writer out_;
  EventLogBudget budget_;
  Clock clock_;
  double tokens_ = 0;
  std::uint64_t refill_ns_ = 0, stacks_omitted_ = 0;
  std::string line_;  // reused: its capacity fits a deep stack after the first
};

}  // namespace loopstall
