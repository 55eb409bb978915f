// Bounds of the values that come from outside the daemon: command-line flags,
// the configuration file, control-socket requests and /proc. Each is
// checked where it enters (docs/security.md lists them).
#pragma once

#include <cstddef>
#include <string>

namespace loopstall {

// threshold_ms: 1 ms .. 1 h, finite. The kernel compares in u64 ns, so NaN
// or 1e300 would become nonsense thresholds after the conversion.
inline constexpr double kMinThresholdMs = 1;
inline constexpr double kMaxThresholdMs = 3'600'000;
// --duration: up to a year, in seconds.
inline constexpr double kMaxDurationS = 365 * 86400.0;
// The configuration file is read into memory and parsed as one JSON text.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;
// Bytes of /proc/PID/cmdline read for `cmdline` matchers: any user can start
// a process with megabytes of arguments.
inline constexpr std::size_t kMaxCmdlineBytes = 4096;
// Bytes of /proc/PID/cgroup kept (one line on cgroup v2; a dozen on v1).
inline constexpr std::size_t kMaxCgroupBytes = 8192;

// "" when `v` is finite and within [min, max], else why not ("must be ...").
std::string range_error(double v, double min, double max);

}  // namespace loopstall
