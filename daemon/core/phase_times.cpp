#include "loopstall/phase_times.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace loopstall {
namespace {

constexpr auto kPhases = static_cast<std::size_t>(Phase::kCount);
constexpr std::array<const char*, kPhases> kNames = {
    "ring_buffer",   "scan",      "report", "snapshot", "python_walk", "python_names", "native_setup",
    "native_unwind", "symbolize", "json",   "metrics",  "write",       "attach"};

std::uint64_t cpu_ns(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(t.tv_nsec);
}

// Printed from a static destructor: runs on a normal exit of capture and
// daemon, after the output thread was joined.
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
    std::fprintf(stderr, " total=1/%llu\n", static_cast<unsigned long long>(cpu_ns(CLOCK_PROCESS_CPUTIME_ID)));
  }
};

Totals& totals() {
  static Totals t;
  return t;
}

// The innermost running timer of this thread: a nested phase pauses it.
thread_local PhaseTimer* innermost = nullptr;

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

PhaseTimer::PhaseTimer(Phase phase) : phase_(phase), on_(phase_times_enabled()) {
  if (!on_) return;
  since_ = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
  outer_ = innermost;
  if (outer_ != nullptr) outer_->own_ns_ += since_ - outer_->since_;
  innermost = this;
}

void PhaseTimer::stop() {
  const std::uint64_t now = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
  own_ns_ += now - since_;
  const auto i = static_cast<std::size_t>(phase_);
  totals().calls[i].fetch_add(1, std::memory_order_relaxed);
  totals().ns[i].fetch_add(own_ns_, std::memory_order_relaxed);
  innermost = outer_;
  if (outer_ != nullptr) outer_->since_ = now;
}

}  // namespace loopstall
