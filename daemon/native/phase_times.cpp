#include "loopstall/native/phase_times.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace loopstall::native {
namespace {

constexpr auto kPhases = static_cast<std::size_t>(Phase::kCount);
constexpr std::array<const char*, kPhases> kNames = {"snapshot",     "python_walk",   "python_names",
                                                     "native_setup", "native_unwind", "symbolize"};

// Printed from a static destructor: runs on a normal exit of capture and daemon.
struct Totals {
  std::array<std::atomic<std::uint64_t>, kPhases> calls{};
  std::array<std::atomic<std::uint64_t>, kPhases> ns{};
  ~Totals() {
    if (!phase_times_enabled()) return;
    std::fprintf(stderr, "loopstall: phase times:");
    for (std::size_t i = 0; i < kPhases; ++i) {
      std::fprintf(stderr, " %s=%llu/%llu", kNames[i], static_cast<unsigned long long>(calls[i].load()),
                   static_cast<unsigned long long>(ns[i].load()));
    }
    std::fprintf(stderr, "\n");
  }
};

Totals& totals() {
  static Totals t;
  return t;
}

}  // namespace

bool phase_times_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("LOOPSTALL_PHASE_TIMES");
    if (v == nullptr || std::strcmp(v, "1") != 0) return false;
    totals();  // constructed now, so destroyed (and printed) at exit
    return true;
  }();
  return on;
}

std::uint64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  // Never 0: 0 means "not timing" to PhaseTimer.
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(t.tv_nsec) + 1;
}

void add_phase_time(Phase phase, std::uint64_t ns) {
  const auto i = static_cast<std::size_t>(phase);
  totals().calls[i].fetch_add(1, std::memory_order_relaxed);
  totals().ns[i].fetch_add(ns, std::memory_order_relaxed);
}

}  // namespace loopstall::native
