#pragma once
// Opt-in CPU time of what a stall report costs, phase by phase (bench/ reads
// it to split the cost): with LOOPSTALL_PHASE_TIMES=1 in the environment, each
// phase's calls and thread CPU time are summed and printed to stderr at exit as
// "loopstall: phase times: NAME=CALLS/NS ... total=1/NS". Phases nest (a report
// is built while the ring buffer is polled); each counts only its own time,
// not that of the phases inside it, so they add up: total (the process's CPU)
// minus every phase is what no phase covers. Off, a timer costs one load of a
// flag read once.
#include <cstdint>

namespace loopstall {

// kRingBuffer: polling and dispatching BPF records; kScan: reading the loops
// map and the scan's decisions; kReport: building a StallReport (/proc reads,
// evidence); kSnapshot: copying a blocked thread's registers and stack;
// kNativeSetup: finding or building the process's Dwfl (maps, ELF files, CFI);
// kJson/kMetrics: the JSON Lines and metrics sinks; kWrite: the output thread's
// writes; kAttach: loading and attaching BPF and the first classification (once
// per run, not per report).
enum class Phase : unsigned {
  kRingBuffer,
  kScan,
  kReport,
  kSnapshot,
  kPythonWalk,
  kPythonNames,
  kNativeSetup,
  kNativeUnwind,
  kSymbolize,
  kJson,
  kMetrics,
  kWrite,
  kAttach,
  kCount
};

bool phase_times_enabled();

// Times one phase on this thread from construction to destruction, minus the
// phases timed inside it.
class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase);
  ~PhaseTimer() {
    if (on_) stop();
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  void stop();

  Phase phase_;
  bool on_;
  PhaseTimer* outer_ = nullptr;
  std::uint64_t since_ = 0;  // thread CPU when this phase last (re)started
  std::uint64_t own_ns_ = 0;
};

}  // namespace loopstall
