// Turns the BPF per-thread loop state into the timing part of a report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loopstall/loopstall.h"
#include "loopstall/stall.hpp"

namespace loopstall {

struct IterationTiming {
  double duration_ms = 0;
  Breakdown breakdown;
  std::vector<SyscallTime> syscalls;  // most blocked time first
};

// Timing of the iteration in `l` as of `end_ns` (CLOCK_MONOTONIC). For a
// finished iteration end_ns is when epoll_wait was entered again and all time
// is already accounted. For one still running (ongoing), the time since the
// last run-state change is added to the state the thread is in now.
IterationTiming decode_iteration(const ls_loop& l, std::uint64_t end_ns, bool ongoing);

// Unique per loop iteration: the ongoing reports and the final one agree.
std::string make_stall_id(std::uint32_t tid, std::uint64_t iter_start_ns);

}  // namespace loopstall
