// Where reports go: JSON Lines, text, (later) metrics and alerts. Sinks are
// called from the correlator's thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "loopstall/stall.hpp"

namespace loopstall {

// Per-process totals for the end-of-capture summary.
struct ProcessTotals {
  std::string comm;
  LoopKind loop = LoopKind::Epoll;
  std::uint64_t iterations = 0;
  std::uint64_t stalls = 0;  // final reports
  double max_stall_ms = 0;
  double stalled_ms = 0;
};

struct Summary {
  double elapsed_s = 0;
  std::uint64_t lost_events = 0;
  std::map<std::uint32_t, ProcessTotals> processes;  // by pid
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void stall(const StallReport& r) = 0;
  virtual void finish(const Summary&) {}
};

}  // namespace loopstall
