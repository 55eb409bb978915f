// Builds the health snapshot (health.hpp) the daemon pushes to its sinks:
// one computation of loops by kind, stalls in progress and lost events, read
// from the detector and the daemon's correlator.
#pragma once

#include <cstdint>

#include "loopstall/correlator.hpp"
#include "loopstall/detector.hpp"
#include "loopstall/health.hpp"

namespace loopstall {

class HealthProbe {
 public:
  // BPF counters, map entries and the daemon's own usage cost syscalls and
  // a walk of two BPF maps: read again at most this often.
  static constexpr std::uint64_t kCountersEveryNs = 1'000'000'000ULL;

  HealthProbe(Detector& det, const Correlator& corr) : det_(det), corr_(corr) {}
  // The snapshot as of the last scan, at now_ns; `fresh` reads the counters
  // whatever their age (a `loopstall status` request).
  const Health& take(std::uint64_t now_ns, bool fresh = false);

 private:
  void read_counters(std::uint64_t now_ns);

  Detector& det_;
  const Correlator& corr_;
  Health h_;
};

// The daemon's own CPU time, memory, start time and open files (/proc/self).
SelfUsage read_self_usage();

}  // namespace loopstall
