// What a process is: Python or not, which version, which loop framework its
// code shows, service, and whether it is loopstall itself.
// Read from /proc (a root directory is a parameter so tests use fake trees).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loopstall/stall.hpp"

namespace loopstall {

struct ProcInfo {
  std::uint32_t pid = 0;
  // Python: the executable is an interpreter or libpython is mapped to run.
  bool python = false;
  // The loop framework its executable mappings show (frameworks.hpp): Gevent
  // or Uvloop decisively, Eventlet as a hint, else Python; Epoll for a
  // non-Python process.
  LoopKind native_loop = LoopKind::Epoll;
  // What a loop thread's Python stack showed in epoll_wait, once read.
  std::optional<LoopKind> stack_loop;
  // loopstall's own processes (this one, and any loopstall/loopstalld
  // binary): they map interpreters to read symbols and are never watched.
  bool loopstall = false;
  // An event-loop module is mapped to run (gevent, asyncio's _asyncio,
  // greenlet, uvloop): only then is a thread outside epoll_wait worth
  // reading for the frames of a loop in progress.
  bool loop_module = false;
  std::optional<std::string> python_version;  // "3.11"
  std::string exe;                            // resolved /proc/PID/exe
  std::string libpython;                      // mapped libpython3.X.so, "" if none
  std::string comm;
  std::string cmdline;  // arguments joined by spaces
  std::string service;  // systemd unit or container, "" if none
  // exe (or maps too) was not readable: another user's process and no
  // CAP_SYS_PTRACE. exe is then the first file in maps (CAP_PERFMON reads
  // them), or python/gevent come from comm and cmdline only.
  bool limited = false;
};

// Whether /proc/PID exists (the process has not been reaped).
bool process_exists(std::uint32_t pid, const std::string& proc_root = "/proc");

// Name of one thread (/proc/PID/task/TID/comm); "" when gone.
std::string thread_comm(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root = "/proc");

// Thread ids of a process (/proc/PID/task); empty when it is gone.
std::vector<std::uint32_t> task_ids(std::uint32_t pid, const std::string& proc_root = "/proc");

// Where a thread is now, from /proc/PID/task/TID/{stat,syscall,sched}.
struct ThreadActivity {
  char state = '?';  // stat's state letter: R (running or runnable), S, D, ...
  int syscall = -1;  // the syscall it is in while it sleeps; -1: none or running
  // CLOCK_MONOTONIC ns when it last ran (the scheduler's exec_start, which
  // needs CONFIG_SCHED_DEBUG); nullopt if unknown.
  std::optional<std::uint64_t> last_ran_ns;
};
// nullopt when the thread is gone or not readable.
std::optional<ThreadActivity> thread_activity(std::uint32_t pid, std::uint32_t tid,
                                              const std::string& proc_root = "/proc");
// Parsers of the three files (exposed for tests). exec_start_ms is in the
// scheduler's clock; sched_clock_offset_ns converts it to CLOCK_MONOTONIC.
char parse_stat_state(std::string_view stat);
int parse_stat_cpu(std::string_view stat);  // the CPU it last ran on; -1 if unreadable
int parse_syscall_nr(std::string_view syscall_file);
std::optional<double> parse_exec_start_ms(std::string_view sched_file);

// nullopt when the process is gone (or never was). Only executable mappings
// count: files a process maps to read (as loopstall does) say nothing about
// what it runs.
std::optional<ProcInfo> inspect_process(std::uint32_t pid, const std::string& proc_root = "/proc");

// Python, Gevent, Uvloop, Eventlet, Twisted or Asyncio for a Python process
// (frameworks.hpp), Epoll for another.
LoopKind loop_kind(const ProcInfo& p);

// "3.11" from ".../python3.11", ".../libpython3.11.so.1.0", ".../python3.11d".
std::optional<std::string> python_version_from_path(std::string_view path);

// Path without the kernel's " (deleted)" suffix.
std::string_view strip_deleted(std::string_view path);

// Service name from the text of /proc/PID/cgroup (cgroup v2 or v1).
std::string service_from_cgroup(std::string_view cgroup_text);

// --- PID namespaces (containers) --------------------------------------------
// A thread has one id per PID namespace it is in. BPF and /proc give us the
// one in the namespace /proc is mounted for (ours); gettid() inside the
// process, and so CPython's native_thread_id and glibc's struct pthread, hold
// the one in the process's own, innermost namespace.

// The ids of the "NSpid:" line of a /proc status file, outermost (ours) first,
// innermost last. Empty when the line is missing or malformed.
std::vector<std::uint32_t> parse_nspid(std::string_view status_text);

// Thread tid of process pid as the process itself knows it; tid itself on a
// kernel without NSpid (before 4.1); nullopt when the thread is gone.
std::optional<std::uint32_t> innermost_tid(std::uint32_t pid, std::uint32_t tid,
                                           const std::string& proc_root = "/proc");

// Whether process pid lives in a PID namespace below ours (a container), where
// its ids differ from ours.
bool in_child_pid_namespace(std::uint32_t pid, const std::string& proc_root = "/proc");

// Every thread of process pid (/proc/PID/task): our tid -> its innermost tid.
// Threads that exit during the walk are left out.
std::map<std::uint32_t, std::uint32_t> innermost_tids(std::uint32_t pid, const std::string& proc_root = "/proc");

// --- Files of other processes (containers) ----------------------------------
// Where we can open a file that process pid maps or runs, given its path as the
// process sees it (/proc/PID/maps, /proc/PID/exe; a " (deleted)" suffix is
// allowed), best first:
//   /proc/PID/map_files/START-END (when map_end > map_start): exactly the
//     mapped file, even deleted or replaced since; needs CAP_SYS_ADMIN;
//   /proc/PID/root/PATH: the path in the process's own root and mount
//     namespace (containers, chroots).
// Never the bare path: in a container it may name another file, or none.
std::vector<std::string> target_file_paths(std::uint32_t pid, std::string_view path, std::uint64_t map_start = 0,
                                           std::uint64_t map_end = 0, const std::string& proc_root = "/proc");

}  // namespace loopstall
