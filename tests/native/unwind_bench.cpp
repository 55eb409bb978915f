// Cost of native unwinding (needs root): µs per unwind with a cold Dwfl (the
// first unwind of a pid) and a warm one (cached), per /proc snapshot, per
// offline replay, and memory and file descriptors per cached pid.
//   loopstall_native_bench [python ...]   (default: /usr/bin/python3.11)
#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/native/unwinder.hpp"
#include "loopstall/procfs.hpp"
#include "test_support.hpp"

using namespace loopstall::native;
using namespace loopstall::native::test;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const char* const kLongSleep =
    "import ctypes; print('ready', flush=True); ctypes.CDLL('libc.so.6').usleep(600_000_000)";

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

struct Summary {
  double median = 0, mean = 0, p95 = 0;
};
Summary summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Summary s;
  s.median = v[v.size() / 2];
  s.p95 = v[v.size() * 95 / 100];
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  return s;
}

// A field of /proc/self/smaps_rollup, in KiB.
long rollup_kib(const std::string& field) {
  std::ifstream f("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with(field + ":")) return std::stol(line.substr(field.size() + 1));
  }
  return 0;
}

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n - 2;
}

void bench(const std::string& python) {
  std::printf("== %s\n", python.c_str());
  constexpr int kProcs = 8;
  std::vector<std::unique_ptr<Child>> children;
  std::vector<StackSnapshot> snaps;
  for (int i = 0; i < kProcs; ++i) {
    children.push_back(std::make_unique<Child>(std::vector<std::string>{python, "-c", kLongSleep}));
    if (children.back()->read_line(10s) != "ready" || !wait_in_syscall(children.back()->pid(), kClockNanosleep, 10s)) {
      std::printf("child did not start\n");
      return;
    }
  }
  std::vector<double> snap_us;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    auto s = snapshot_blocked_thread(children[0]->pid(), children[0]->pid());
    snap_us.push_back(us_since(t0));
    if (i == 0) snaps.push_back(*s);
  }
  for (int i = 1; i < kProcs; ++i) snaps.push_back(*snapshot_blocked_thread(children[i]->pid(), children[i]->pid()));

  std::vector<double> cold;
  std::size_t frames = 0;
  for (int i = 0; i < 30; ++i) {
    NativeUnwinder u;
    const auto t0 = Clock::now();
    frames = u.unwind(children[0]->pid(), snaps[0]).size();
    cold.push_back(us_since(t0));
  }
  // A new pid in a running daemon: symbol tables are shared by build-id.
  std::vector<double> cold_shared;
  {
    NativeUnwinder u;
    u.unwind(children[1]->pid(), snaps[1]);
    for (int i = 0; i < 30; ++i) {
      u.forget(children[0]->pid());
      const auto t0 = Clock::now();
      u.unwind(children[0]->pid(), snaps[0]);
      cold_shared.push_back(us_since(t0));
    }
  }
  NativeUnwinder warm_unwinder;
  warm_unwinder.unwind(children[0]->pid(), snaps[0]);
  std::vector<double> warm;
  for (int i = 0; i < 2000; ++i) {
    const auto t0 = Clock::now();
    warm_unwinder.unwind(children[0]->pid(), snaps[0]);
    warm.push_back(us_since(t0));
  }
  // Offline replay: the Dwfl is built every time (no cache).
  const std::string maps = *loopstall::read_maps(static_cast<std::uint32_t>(children[0]->pid()));
  std::vector<double> replay;
  for (int i = 0; i < 30; ++i) {
    const auto t0 = Clock::now();
    warm_unwinder.unwind_recorded(maps, snaps[0]);
    replay.push_back(us_since(t0));
  }

  // Memory: kProcs distinct pids cached in one unwinder.
  malloc_trim(0);
  const auto heap0 = mallinfo2().uordblks;
  const long rss0 = rollup_kib("Rss"), dirty0 = rollup_kib("Private_Dirty");
  const int fds0 = open_fds();
  {
    NativeUnwinder u({.max_processes = kProcs});
    for (int i = 0; i < kProcs; ++i) u.unwind(children[i]->pid(), snaps[i]);
    const auto heap1 = mallinfo2().uordblks;
    const long rss1 = rollup_kib("Rss"), dirty1 = rollup_kib("Private_Dirty");
    const int fds1 = open_fds();
    std::printf("frames per unwind       %zu\n", frames);
    std::printf("snapshot from /proc     median %.1f us  mean %.1f us\n", summarize(snap_us).median,
                summarize(snap_us).mean);
    const auto c = summarize(cold), w = summarize(warm), r = summarize(replay);
    const auto cs = summarize(cold_shared);
    std::printf("unwind cold (first pid) median %.0f us  mean %.0f us  p95 %.0f us\n", c.median, c.mean, c.p95);
    std::printf("unwind cold (new pid)   median %.0f us  mean %.0f us  p95 %.0f us\n", cs.median, cs.mean, cs.p95);
    std::printf("unwind warm (cached)    median %.1f us  mean %.1f us  p95 %.1f us\n", w.median, w.mean, w.p95);
    std::printf("offline replay          median %.0f us\n", r.median);
    std::printf("per cached pid          heap %.0f KiB  private dirty %.0f KiB  RSS %.0f KiB  fds %.1f\n",
                static_cast<double>(heap1 - heap0) / 1024.0 / kProcs, static_cast<double>(dirty1 - dirty0) / kProcs,
                static_cast<double>(rss1 - rss0) / kProcs, static_cast<double>(fds1 - fds0) / kProcs);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "needs root\n");
    return 1;
  }
  std::vector<std::string> pythons;
  for (int i = 1; i < argc; ++i) pythons.push_back(argv[i]);
  if (pythons.empty()) pythons.push_back(kDebianPython);
  for (const auto& p : pythons) bench(p);
  return 0;
}
