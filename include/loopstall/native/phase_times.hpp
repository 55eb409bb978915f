#pragma once
// Opt-in CPU time of the stack phases (bench/ reads it to split the cost of a
// stall report): with LOOPSTALL_PHASE_TIMES=1 in the environment, each phase's
// calls and thread CPU time are summed and printed to stderr at exit as
// "loopstall: phase times: NAME=CALLS/NS ...". Off, a timer costs one load of a
// flag read once.
#include <cstdint>

namespace loopstall::native {

// kSnapshot: copying a blocked thread's registers and stack (/proc, process_vm_readv);
// kNativeSetup: finding or building the process's Dwfl (maps, ELF files, CFI).
enum class Phase : unsigned { kSnapshot, kPythonWalk, kPythonNames, kNativeSetup, kNativeUnwind, kSymbolize, kCount };

bool phase_times_enabled();
std::uint64_t thread_cpu_ns();
void add_phase_time(Phase phase, std::uint64_t ns);

class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase) : phase_(phase), t0_(phase_times_enabled() ? thread_cpu_ns() : 0) {}
  ~PhaseTimer() {
    if (t0_ != 0) add_phase_time(phase_, thread_cpu_ns() - t0_);
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  Phase phase_;
  std::uint64_t t0_;
};

}  // namespace loopstall::native
