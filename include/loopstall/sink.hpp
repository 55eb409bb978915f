// Where reports go: JSON Lines, text, metrics, alerts, counters. Sinks only
// receive: stall reports and iteration counts from the correlator, a health
// snapshot from the app (health.hpp); none reads the engine, the detector or
// the correlator back. Called from the detector's thread only.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loopstall/health.hpp"
#include "loopstall/stall.hpp"

namespace loopstall {

// Iteration durations in the BPF side's log2 buckets (bucket i:
// [2^(i-1), 2^i) us); kHistBuckets == LS_HIST_BUCKETS, checked where both
// are seen (core/correlator.cpp), so no sink needs the BPF header.
inline constexpr std::size_t kHistBuckets = 32;
using IterationHist = std::array<std::uint64_t, kHistBuckets>;

// Iterations of one loop thread measured since the last report.
struct IterationDelta {
  std::uint64_t count = 0;
  IterationHist hist{};
  // Time those iterations spent by run state (loop utilisation).
  std::uint64_t busy_on_cpu_ns = 0, busy_blocked_ns = 0, busy_runq_ns = 0;
  // Socket receives since the last call, and the bytes they returned (churn).
  std::uint64_t reads = 0, read_bytes = 0;
};

// Upper bound (seconds) of log2 bucket i: 2^i microseconds.
inline double hist_bucket_upper_s(std::size_t i) {
  return static_cast<double>(1ULL << i) / 1e6;
}

// The q-quantile (0..1) of a log2 histogram, as its bucket's upper bound in
// milliseconds; 0 when empty.
double hist_quantile_ms(const IterationHist& hist, double q);

// A stall still going on, as its last ongoing report described it.
struct OngoingStall {
  std::int64_t start_unix_ns = 0;
  double duration_ms = 0;  // at that report
  Cause cause = Cause::Cpu;
  std::string culprit;  // culprit_summary()
};

// Per-process totals for the end-of-capture summary (and `loopstall top`).
struct ProcessTotals {
  std::string comm;
  LoopKind loop = LoopKind::Epoll;
  std::uint64_t iterations = 0;
  std::uint64_t stalls = 0;  // final reports
  double max_stall_ms = 0;
  double stalled_ms = 0;
  // Stalls still going on when the capture ended (not in `stalls`), and
  // the longest of them so far: a hung loop is never a "0 stalls" summary.
  std::uint64_t in_progress = 0;
  double in_progress_max_ms = 0;
  double in_progress_ms = 0;  // their durations so far, summed
  IterationHist hist{};       // iteration durations
  // Utilisation and churn over the capture (IterationDelta sums).
  std::uint64_t busy_on_cpu_ns = 0, busy_blocked_ns = 0, busy_runq_ns = 0;
  std::uint64_t reads = 0, read_bytes = 0;
  // Loop threads of the process seen (utilisation is per loop thread).
  std::uint32_t loop_threads = 0;
  std::optional<OngoingStall> ongoing{};  // the latest ongoing report, until its final one
  std::string service{};                  // as the correlator names it ("" for none)
  // Stalled time by culprit (culprit_shares()), final and in-progress stalls;
  // at most kMaxCulprits names (a process names its functions: the daemon
  // keeps these for its life), the rest as "[other]".
  static constexpr std::size_t kMaxCulprits = 64;
  std::map<std::string, double> culprit_ms{};
  void add_culprits(const StallReport& r);
  // The culprit with the most stalled time, "" when none stalled.
  std::string top_culprit() const;
};

struct Summary {
  double elapsed_s = 0;
  std::uint64_t lost_events = 0;
  std::map<std::uint32_t, ProcessTotals> processes;  // by pid
};

// Where a sink's records go (one call per record, ending in a newline): an
// OutputQueue (output.hpp), a control-socket client's buffer.
using Writer = std::function<void(std::string_view)>;

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void stall(const StallReport& r) = 0;
  // Iterations measured since the last call, for one process of `service`
  // (service_name(): the same value as in its events).
  virtual void iterations(std::uint32_t /*pid*/, const std::string& /*service*/, const IterationDelta& /*d*/) {}
  // The state of the loops and of the tracer, after each scan.
  virtual void health(const Health& /*h*/) {}
  // Time passed (CLOCK_MONOTONIC), after each scan of the loops (~20 ms):
  // for sinks that hold records back and owe them at a deadline.
  virtual void tick(std::uint64_t /*now_ns*/) {}
  virtual void finish(const Summary&) {}
};

// Sends everything to several sinks, in order.
class FanoutSink : public Sink {
 public:
  void add(Sink* s) { sinks_.push_back(s); }
  void stall(const StallReport& r) override {
    for (Sink* s : sinks_) s->stall(r);
  }
  void iterations(std::uint32_t pid, const std::string& service, const IterationDelta& d) override {
    for (Sink* s : sinks_) s->iterations(pid, service, d);
  }
  void health(const Health& h) override {
    for (Sink* s : sinks_) s->health(h);
  }
  void tick(std::uint64_t now_ns) override {
    for (Sink* s : sinks_) s->tick(now_ns);
  }
  void finish(const Summary& sum) override {
    for (Sink* s : sinks_) s->finish(sum);
  }

 private:
  std::vector<Sink*> sinks_;
};

// Counts final reports (`loopstall status`, the systemd status line).
class StallCounter : public Sink {
 public:
  void stall(const StallReport& r) override { stalls_ += r.ongoing ? 0 : 1; }
  std::uint64_t stalls() const { return stalls_; }

 private:
  std::uint64_t stalls_ = 0;
};

}  // namespace loopstall
