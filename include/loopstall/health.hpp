// The health snapshot: the state of the watched loops and of the tracer
// itself, built by the app once per scan (daemon/app/health_probe.cpp) and
// pushed to every sink (Sink::health). Plain data: the metrics, the alert
// rules and `loopstall status` read it instead of asking the engine, the
// detector or the correlator.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loopstall/stall.hpp"

namespace loopstall {

// A watched loop thread inside an iteration at the scan (not waiting in
// epoll_wait): what hung-loop rules look at.
struct LoopInIteration {
  std::uint32_t pid = 0, tid = 0;
  std::uint64_t iter_start_ns = 0;  // CLOCK_MONOTONIC
  std::string service;
};

// Kernel-side cost of one BPF program (zeros unless kernel.bpf_stats_enabled).
struct ProgramRuns {
  std::string name;
  std::uint64_t runs = 0, run_ns = 0;
};

// The daemon's own process (process_* series).
struct SelfUsage {
  double cpu_s = 0, rss_bytes = 0, start_time_s = 0, open_fds = 0;
};

struct Health {
  std::uint64_t now_ns = 0;        // CLOCK_MONOTONIC of the snapshot
  double threshold_ms = 0;         // the daemon's
  double kernel_threshold_ms = 0;  // the lowest of the daemon's and its capture clients'

  // From the last scan of the loops map, watched processes only.
  std::array<std::uint64_t, kLoopKinds.size()> loops_by_kind{};  // indexed by LoopKind
  std::uint64_t monitored_loops = 0;                             // their sum
  std::vector<LoopInIteration> in_iteration;
  std::uint64_t watched_processes = 0;
  std::uint64_t ongoing_stalls = 0;
  std::uint64_t longest_ongoing_ns = 0;
  std::uint64_t lost_events = 0;          // ring buffer drops, cumulative
  std::uint64_t samples_over_budget = 0;  // cumulative
  // Stall stack reads skipped (StackBudget), cumulative: repeats of a loop
  // whose events are coalesced, and reads over the budget.
  std::uint64_t stack_skipped_repeat = 0, stack_skipped_budget = 0;

  // Read with syscalls, so at most once a second (counters_read_ns says when).
  std::uint64_t counters_read_ns = 0;
  // Watched loop threads by service (as the process gave it), counted with
  // the counters: the denominator of a service's average utilisation.
  std::map<std::string, std::uint64_t> loops_by_service;
  int programs_attached = 0;
  std::vector<std::string> attach_failures;  // optional programs not attached
  struct Bpf {                               // the BPF side's own counters, cumulative
    std::uint64_t iterations = 0, samples = 0, samples_skipped = 0, state_repairs = 0;
    std::uint64_t loops_full = 0, procs_full = 0;  // threads/processes not tracked
  } bpf;
  struct MapEntries {
    std::uint64_t loops = 0, procs = 0, py_threads = 0;
  } map_entries;
  bool bpf_stats_enabled = false;  // kernel.bpf_stats_enabled: only then are `programs` meaningful
  std::vector<ProgramRuns> programs;
  SelfUsage self;

  std::uint64_t loops(LoopKind k) const { return loops_by_kind[static_cast<std::size_t>(k)]; }
};

}  // namespace loopstall
