#include "loopstall/clock.hpp"

#include <ctime>

namespace loopstall {
namespace {

std::int64_t read_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

}  // namespace

std::uint64_t monotonic_ns() {
  return static_cast<std::uint64_t>(read_ns(CLOCK_MONOTONIC));
}
std::int64_t realtime_ns() {
  return read_ns(CLOCK_REALTIME);
}

WallClock::WallClock() {
  refresh();
}

void WallClock::refresh() {
  // Bracket the realtime read between two monotonic reads to halve the error.
  const std::int64_t m1 = read_ns(CLOCK_MONOTONIC);
  const std::int64_t r = read_ns(CLOCK_REALTIME);
  const std::int64_t m2 = read_ns(CLOCK_MONOTONIC);
  offset_ = r - (m1 + (m2 - m1) / 2);
}

}  // namespace loopstall
