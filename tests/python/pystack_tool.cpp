// pystack [--bench N] PID [TID...]: prints the Python stack of each thread
// (all Python threads when no TID is given), innermost first; --bench also
// times N further stack() calls per thread (warm cache). A debugging aid for
// the CPython reader and a quick way to check a new interpreter build.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "loopstall/procinfo.hpp"
#include "loopstall/python/stack_reader.hpp"

using loopstall::python::PyProcess;

int main(int argc, char** argv) {
  int bench = 0;
  int first = 1;
  if (argc > 3 && std::string(argv[1]) == "--bench") {
    bench = std::atoi(argv[2]);
    first = 3;
  }
  if (argc <= first) {
    std::fprintf(stderr, "usage: %s [--bench N] PID [TID...]\n", argv[0]);
    return 2;
  }
  const pid_t pid = static_cast<pid_t>(std::atoi(argv[first]));
  auto py = PyProcess::attach(pid);
  if (!py) {
    std::fprintf(stderr, "pid %d: not a supported CPython (3.8 .. 3.13), or not readable\n", pid);
    return 1;
  }
  std::printf("pid %d: CPython %s, _PyRuntime 0x%lx in %s%s\n", pid, py->version().c_str(),
              static_cast<unsigned long>(py->runtime_address()), py->runtime_info().binary.c_str(),
              py->uses_debug_offsets() ? " (offsets from _Py_DebugOffsets)" : "");
  std::vector<std::uint32_t> tids;
  for (int i = first + 1; i < argc; ++i) tids.push_back(static_cast<std::uint32_t>(std::strtoul(argv[i], nullptr, 10)));
  if (tids.empty()) {
    // Our tids (a process in a container knows its threads by others).
    for (const auto& [ours, theirs] : loopstall::innermost_tids(static_cast<std::uint32_t>(pid))) tids.push_back(ours);
  }
  for (const std::uint32_t tid : tids) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto frames = py->stack(tid);
    const auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (!py->thread_state(tid)) continue;
    std::printf("thread %u (%zu frames, %.1f us):\n", tid, frames.size(), us);
    if (bench > 0) {
      const auto b0 = std::chrono::steady_clock::now();
      for (int i = 0; i < bench; ++i) (void)py->stack(tid);
      const auto total = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - b0).count();
      std::printf("  warm: %.2f us per stack() over %d calls\n", total / bench, bench);
    }
    for (const auto& f : frames) {
      std::printf("  %s (%s:%s)\n", f.function.c_str(), f.file.c_str(), f.line ? std::to_string(*f.line).c_str() : "?");
    }
  }
  return 0;
}
