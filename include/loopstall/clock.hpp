// CLOCK_MONOTONIC (what bpf_ktime_get_ns returns) to wall-clock time.
#pragma once

#include <cstdint>

namespace loopstall {

std::uint64_t monotonic_ns();
std::int64_t realtime_ns();

class WallClock {
 public:
  WallClock();
  // Re-reads the offset (NTP steps move the wall clock, not the monotonic).
  void refresh();
  std::int64_t to_unix_ns(std::uint64_t mono_ns) const { return offset_ + static_cast<std::int64_t>(mono_ns); }

 private:
  std::int64_t offset_ = 0;
};

}  // namespace loopstall
