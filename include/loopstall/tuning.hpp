// The detection parameters -- stall threshold, on-CPU sampling period and the
// age from which an iteration's evidence is gathered -- with their defaults,
// bounds and unit conversions. The one owner: flags, the configuration file,
// control requests, the engine, the BPF globals (set from here before load)
// and the correlator all take them from this header.
#pragma once

#include <cstdint>
#include <string>

#include "loopstall/limits.hpp"

namespace loopstall {

struct Tuning {
  // gevent's max_blocking_time.
  static constexpr double kDefaultThresholdMs = 100;
  // 99 Hz: not in step with 100 Hz timers, which would hide a periodic culprit.
  static constexpr double kDefaultSampleHz = 99;
  static constexpr double kMinSampleHz = 1, kMaxSampleHz = 1000;

  double threshold_ms = kDefaultThresholdMs;
  double sample_hz = kDefaultSampleHz;  // 0: no on-CPU sampling

  std::uint64_t threshold_ns() const { return ms_to_ns(threshold_ms); }
  std::uint64_t sample_period_ns() const { return period_ns_of_hz(sample_hz); }
  double sample_period_ms() const { return ns_to_ms(sample_period_ns()); }
  std::uint64_t evidence_after_ns() const { return evidence_after_ns_of(threshold_ns()); }
  // "" when both are within their bounds (finite: NaN or 1e300 would turn
  // into nonsense u64 nanoseconds), else what is wrong, naming the field.
  std::string error() const;

  // Milliseconds (already checked: finite, >= 0) as the kernel's u64 ns.
  static constexpr std::uint64_t ms_to_ns(double ms) { return static_cast<std::uint64_t>(ms * 1e6); }
  static constexpr double ns_to_ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
  // The sampler's fixed period for a frequency; 0 Hz: none.
  static constexpr std::uint64_t period_ns_of_hz(double hz) {
    return hz > 0 ? static_cast<std::uint64_t>(1e9 / hz) : 0;
  }
  // Evidence (on-CPU samples in BPF, block stacks in userspace) is gathered
  // for iterations older than half the threshold: a stall just over the
  // threshold still has some, and a healthy loop costs nothing.
  static constexpr std::uint64_t evidence_after_ns_of(std::uint64_t threshold_ns) { return threshold_ns / 2; }
  // Whether the iteration that began at start_ns (0: none in progress) has
  // gone on for at least age_ns at now_ns. A start after now (a snapshot
  // older than the iteration) is not old.
  static constexpr bool iteration_older(std::uint64_t start_ns, std::uint64_t now_ns, std::uint64_t age_ns) {
    return start_ns && now_ns >= start_ns && now_ns - start_ns >= age_ns;
  }
};

}  // namespace loopstall
