// Where reports go: JSON Lines, text, (later) metrics and alerts. Sinks are
// called from the correlator's thread only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

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

// Where a text sink's bytes go: a file, a control-socket client's buffer.
using Writer = std::function<void(std::string_view)>;
// Writes and flushes (reports must reach a pipe reader line by line).
Writer file_writer(std::FILE* f);

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void stall(const StallReport& r) = 0;
  // Iterations measured since the last call, for one process; `service` is
  // its service or, when it has none, its comm.
  virtual void iterations(std::uint32_t /*pid*/, const std::string& /*service*/, std::uint64_t /*delta*/) {}
  virtual void finish(const Summary&) {}
};

// Sends everything to several sinks, in order.
class FanoutSink : public Sink {
 public:
  void add(Sink* s) { sinks_.push_back(s); }
  void stall(const StallReport& r) override {
    for (Sink* s : sinks_) s->stall(r);
  }
  void iterations(std::uint32_t pid, const std::string& service, std::uint64_t delta) override {
    for (Sink* s : sinks_) s->iterations(pid, service, delta);
  }
  void finish(const Summary& sum) override {
    for (Sink* s : sinks_) s->finish(sum);
  }

 private:
  std::vector<Sink*> sinks_;
};

}  // namespace loopstall
