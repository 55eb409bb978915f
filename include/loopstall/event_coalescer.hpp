// Storm control for the JSON event stream: a stage in front of an event sink
// that folds repeats of one loop's stall with one culprit into a summary per
// window, so a host where every worker stalls does not flood the log. Only
// the written stream changes: metrics and alerts sit beside this stage and
// see every report. docs/operations.md ("Event coalescing") says what a
// consumer sees.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "loopstall/sink.hpp"
#include "loopstall/stack_budget.hpp"

namespace loopstall {

struct CoalesceOptions {
  bool enabled = false;
  double window_s = 10;
  // Final stalls per loop and culprit written one by one in a window; a
  // window that coalesced repeats is followed by one with no such allowance
  // while the repeats go on.
  std::uint32_t burst = 5;

  // Never coalesced: stalls this long, and those over twice the longest of
  // their window so far.
  static constexpr double kAlwaysWriteMs = 1000;
  // An ongoing report of a repeating culprit is held back only until the
  // stall has lasted this long (then written: a hang is always reported).
  static constexpr double kOngoingHoldMs = 1000;
  // Memory bound (a local user decides how many loops stall, and where):
  // loops followed, culprits per loop. Beyond them reports are written.
  static constexpr std::size_t kMaxLoops = 4096;
  static constexpr std::size_t kMaxCulpritsPerLoop = 8;

  std::uint64_t window_ns() const { return static_cast<std::uint64_t>(window_s * 1e9); }
  bool operator==(const CoalesceOptions&) const = default;
};

// The Detector's stack reading that goes with it: with coalescing on, the
// stacks of repeats would never be written, so they are not read (only each
// loop's first `burst` stalls of a window, one repeat for the summary, and
// its longest ones).
StackBudget::Policy stack_policy(const CoalesceOptions& o);

class EventCoalescer : public Sink {
 public:
  struct Counts {
    std::uint64_t coalesced = 0;         // final reports folded into summaries
    std::uint64_t summaries = 0;         // summaries written
    std::uint64_t ongoing_withheld = 0;  // ongoing reports whose stall ended while held
    std::uint64_t table_full = 0;        // written one by one: no room to follow them
  };

  // Writes to `next` (not owned). `clock`: CLOCK_MONOTONIC ns (tests: fake).
  EventCoalescer(Sink& next, CoalesceOptions opt, std::function<std::uint64_t()> clock = {});

  void stall(const StallReport& r) override;
  void iterations(std::uint32_t pid, const std::string& service, const IterationDelta& d) override {
    next_.iterations(pid, service, d);
  }
  void health(const Health& h) override { next_.health(h); }
  // Ends windows that are over, releases ongoing reports held long enough.
  void tick(std::uint64_t now_ns) override;
  void finish(const Summary& s) override {
    flush();
    next_.finish(s);
  }
  // Everything held back goes out now (shutdown, the end of a capture).
  void flush();

  const Counts& counts() const { return counts_; }
  // Loops and culprits followed now (bounded by kMaxLoops, kMaxCulpritsPerLoop).
  std::size_t loops_followed() const { return loops_.size(); }

 private:
  // One culprit of one loop within the current window.
  struct Culprit {
    Cause cause = Cause::Cpu;
    std::string where;  // innermost Python function+file, or top native symbol; "" unknown
    std::uint64_t window_start_ns = 0;
    std::uint32_t written = 0;           // finals written one by one this window
    bool storming = false;               // the last window coalesced: no allowance in this one
    double window_max_ms = 0;            // longest final this window, written or not
    std::optional<StallReport> longest;  // of the folded ones (with stacks, if any has them)
    Coalesced folded;
  };
  struct Held {
    StallReport report;
    std::uint64_t until_ns = 0;  // written then if its final has not come
  };
  struct Loop {
    std::vector<Culprit> culprits;
    std::optional<Held> held;  // an ongoing report not written (one iteration at a time)
    std::string open_stall;    // a stall whose ongoing report was written
  };
  using LoopKey = std::uint64_t;  // pid << 32 | tid

  Culprit* find(Loop& l, Cause cause, const std::string& where);
  Culprit* follow(Loop& l, Cause cause, std::string where, std::uint64_t now);
  bool over_allowance(const Culprit& c) const { return c.written >= (c.storming ? 0 : opt_.burst); }
  // Writes the window's summary (if any) and starts the next; false when
  // the culprit had nothing in its window (it can be forgotten).
  bool end_window(Culprit& c, std::uint64_t now);
  void on_ongoing(const StallReport& r, std::uint64_t now);
  void on_final(const StallReport& r, std::uint64_t now);

  Sink& next_;
  CoalesceOptions opt_;
  std::function<std::uint64_t()> clock_;
  std::unordered_map<LoopKey, Loop> loops_;
  std::uint64_t next_due_ns_ = UINT64_MAX;  // earliest window end or hold deadline
  Counts counts_;
};

// The culprit a report names for coalescing: the innermost Python frame's
// function and file, else the top native symbol; "" when it has no stacks.
std::string culprit_site(const StallReport& r);

}  // namespace loopstall
