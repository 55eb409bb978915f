// Hostile inputs: the unwinder must return an empty or partial stack in
// bounded time, never crash or hang.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <random>

#include "doctest_helpers.hpp"
#include "loopstall/native/proc_maps.hpp"
#include "loopstall/native/snapshot.hpp"
#include "loopstall/native/unwinder.hpp"
#include "loopstall/procfs.hpp"

using namespace loopstall::native;
using namespace loopstall::native::test;

namespace {

StackSnapshot random_snapshot(std::mt19937_64& rng, const std::vector<Mapping>& code) {
  StackSnapshot s;
  auto pick_code = [&] {
    const Mapping& m = code[rng() % code.size()];
    return m.start + rng() % (m.end - m.start);
  };
  // Mix plausible and absurd values: real code addresses exercise CFI with
  // garbage stacks, random ones exercise the failure paths.
  auto value = [&]() -> std::uint64_t {
    switch (rng() % 4) {
      case 0: return rng();
      case 1: return code.empty() ? rng() : pick_code();
      case 2: return rng() % 0x10000;
      default: return ~0ull - rng() % 0x10000;
    }
  };
  s.regs = {value(), value(), value(),
            value(), value(), value(),
            value(), value(), static_cast<std::uint32_t>(rng() & UserRegs::kAll)};
  s.stack_base = rng() % 2 ? s.regs.sp : value();
  s.stack.resize(rng() % (16 * 1024));
  for (auto& b : s.stack) b = static_cast<std::uint8_t>(rng() % 4 == 0 ? rng() : 0);
  // Sprinkle pointers into code, like saved return addresses.
  for (std::size_t i = 0; i + 8 <= s.stack.size() && !code.empty(); i += 8 * (1 + rng() % 16)) {
    const std::uint64_t v = pick_code();
    std::memcpy(s.stack.data() + i, &v, 8);
  }
  return s;
}

std::vector<Mapping> own_code_mappings() {
  std::vector<Mapping> out;
  for (auto& m : parse_maps(loopstall::read_maps(static_cast<std::uint32_t>(::getpid())).value_or(""))) {
    if (m.executable) out.push_back(m);
  }
  return out;
}

}  // namespace

TEST_CASE("random registers and stacks: no crash, bounded frames") {
  const auto code = own_code_mappings();
  REQUIRE_FALSE(code.empty());
  // LOOPSTALL_GARBAGE_ITERATIONS=100000 LOOPSTALL_GARBAGE_SEED=n for a
  // longer fuzz run.
  const char* seed = std::getenv("LOOPSTALL_GARBAGE_SEED");
  const char* iterations_env = std::getenv("LOOPSTALL_GARBAGE_ITERATIONS");
  std::mt19937_64 rng(seed != nullptr ? std::strtoull(seed, nullptr, 10) : 20261101);
  const int iterations = iterations_env != nullptr ? std::atoi(iterations_env) : 400;
  NativeUnwinder u;
  using Clock = std::chrono::steady_clock;
  Clock::duration total_time{}, worst{};
  std::size_t total = 0;
  for (int i = 0; i < iterations; ++i) {
    const auto s = random_snapshot(rng, code);
    const std::size_t max = 1 + rng() % 64;
    const auto t0 = Clock::now();
    const auto f = u.unwind_frames(::getpid(), s, max);
    const auto took = Clock::now() - t0;
    total_time += took;
    worst = std::max(worst, took);
    CHECK(f.size() <= max);
    total += f.size();
  }
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  MESSAGE(iterations << " garbage unwinds: " << total << " frames, " << duration_cast<milliseconds>(total_time).count()
                     << " ms, worst " << duration_cast<milliseconds>(worst).count() << " ms");
  // No wall-clock assertion (timing belongs in bench/): a hang is caught by
  // the ctest TIMEOUT of this test.
  // Offline, with made-up maps too.
  for (int i = 0; i < 50; ++i) {
    const auto s = random_snapshot(rng, code);
    CHECK(u.unwind_recorded(*loopstall::read_maps(static_cast<std::uint32_t>(::getpid())), s, 16).size() <= 16);
  }
}

TEST_CASE("a pid that has exited, kernel threads, absurd pids") {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  std::mt19937_64 rng(7);
  const auto s = random_snapshot(rng, own_code_mappings());
  NativeUnwinder u;
  CHECK(u.unwind(pid, s).empty());
  CHECK_FALSE(snapshot_blocked_thread(pid, pid).has_value());
  // kthreadd: no user context, no mappings.
  CHECK_FALSE(snapshot_blocked_thread(2, 2).has_value());
  CHECK(u.unwind(2, s).empty());
  CHECK(u.unwind(0, s).empty());
  CHECK(u.unwind(-1, s).empty());
  CHECK(u.cached_processes() == 0);
}

TEST_CASE("degenerate snapshots") {
  NativeUnwinder u;
  StackSnapshot empty;
  CHECK(u.unwind(::getpid(), empty).empty());  // ip unknown
  StackSnapshot s;
  s.regs.ip = reinterpret_cast<std::uint64_t>(&::getpid);
  s.regs.known = UserRegs::kIp;  // no sp: one frame at most
  CHECK(u.unwind(::getpid(), s).size() <= 1);
  s.regs.known = UserRegs::kAll;
  s.regs.sp = ~0ull - 4;
  s.stack_base = ~0ull - 4;  // a copy that would wrap around
  s.stack.assign(64, 0xff);
  CHECK(u.unwind(::getpid(), s, 8).size() <= 8);
  CHECK(u.unwind(::getpid(), s, 0).empty());
  CHECK(u.unwind_recorded("garbage\n\x01\x02", s).empty());
  CHECK(u.unwind_recorded("", s).empty());
}

TEST_CASE("the cache is bounded and can be told about exits") {
  NativeUnwinder u({.max_processes = 1});
  std::mt19937_64 rng(3);
  const auto s = random_snapshot(rng, own_code_mappings());
  u.unwind(::getpid(), s);
  CHECK(u.cached_processes() == 1);
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  u.unwind(child, s);
  CHECK(u.cached_processes() == 1);
  CHECK(u.stats().evictions == 1);
  u.forget(child);
  CHECK(u.cached_processes() == 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST_CASE("read_stack: up to the first unreadable page, in one read or page by page alike") {
  constexpr std::size_t kPage = loopstall::Memory::kPageSize;
  void* area = mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(area != MAP_FAILED);
  auto* bytes = static_cast<std::uint8_t*>(area);
  for (std::size_t i = 0; i < 4 * kPage; ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  REQUIRE(mprotect(bytes + 2 * kPage, kPage, PROT_NONE) == 0);  // a hole: the "end" of the stack
  // The base class's page-by-page reads, for comparison.
  struct PageByPage final : loopstall::Memory {
    loopstall::ProcessMemory live{getpid()};
    bool read(std::uint64_t addr, void* buf, std::size_t n) const override { return live.read(addr, buf, n); }
  } slow;
  const loopstall::ProcessMemory fast(getpid());
  const auto sp = reinterpret_cast<std::uint64_t>(bytes) + 100;
  for (const std::size_t want : {std::size_t{0}, std::size_t{10}, kPage, 3 * kPage, 16 * kPage}) {
    CAPTURE(want);
    const auto got = read_stack(fast, sp, want);
    CHECK(got == read_stack(slow, sp, want));
    CHECK(got.size() == std::min(want, 2 * kPage - 100));
    CHECK(std::equal(got.begin(), got.end(), bytes + 100));
  }
  CHECK(read_stack(fast, reinterpret_cast<std::uint64_t>(bytes) + 2 * kPage, kPage).empty());
  munmap(area, 4 * kPage);
}
