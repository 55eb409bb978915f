// Helpers for the native-stack tests and tools: child processes to unwind, a
// ptrace snapshot for threads that are on CPU (tests only: the product never
// ptraces), and frame printing. No doctest here (the tools link it too).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "loopstall/native/snapshot.hpp"
#include "loopstall/native/unwinder.hpp"

namespace loopstall::native::test {

// A child process, killed and reaped on destruction.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  // Reads one line of the child's stdout (waits up to timeout).
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  void kill_and_wait();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
};

// Polls pred every 10 ms until it holds or timeout passes.
bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// The pid's main thread blocked in syscall nr (e.g. 230, clock_nanosleep).
bool wait_in_syscall(pid_t pid, long nr, std::chrono::milliseconds timeout);

// Full registers and stack of a running thread: PTRACE_SEIZE, INTERRUPT,
// GETREGS, copy the stack, detach. nullopt on failure.
std::optional<StackSnapshot> ptrace_snapshot(pid_t pid, std::size_t stack_bytes = 16 * 1024);

std::string format_frames(const std::vector<UnwoundFrame>& frames);

// Index of the first frame whose symbol satisfies pred (and whose module
// contains module_part, when given); -1 if none.
int find_frame(const std::vector<UnwoundFrame>& frames, const std::function<bool(const std::string&)>& pred,
               const std::string& module_part = "");

std::string home_dir();

// The interpreters and scripts the tests and the recorder run.
inline constexpr long kClockNanosleep = 230;
inline constexpr const char* kDebianPython = "/usr/bin/python3.11";
inline constexpr const char* kUsleepScript =
    "import ctypes; print('ready', flush=True); ctypes.CDLL('libc.so.6').usleep(3_000_000)";
inline constexpr const char* kSqliteScript =
    "import sqlite3; c = sqlite3.connect(':memory:'); print('ready', flush=True)\n"
    "c.execute('with recursive r(i) as (select 1 union all select i + 1 from r where i < 50000000) "
    "select count(*) from r').fetchone()";

}  // namespace loopstall::native::test
