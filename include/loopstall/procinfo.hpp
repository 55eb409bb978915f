// What a process is: Python or not, which version, which loop framework its
// code shows, service, and whether it is loopstall itself. Read through
// procfs.hpp (a root directory is a parameter so tests use fake trees).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loopstall/procfs.hpp"
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
  std::string cgroup;   // /proc/PID/cgroup (bounded)
  std::string unit;     // systemd unit from the cgroup, "" if none
  std::string service;  // the name service_name() gives it (the correlator fills it in)
  // exe (or maps too) was not readable: another user's process and no
  // CAP_SYS_PTRACE. exe is then the first file in maps (CAP_PERFMON reads
  // them), or python/gevent come from comm and cmdline only.
  bool limited = false;
};

// nullopt when the process is gone (or never was). Only executable mappings
// count: files a process maps to read (as loopstall does) say nothing about
// what it runs. Reads ProcTexts, then classify_process.
std::optional<ProcInfo> inspect_process(std::uint32_t pid, const std::string& proc_root = "/proc");

// What inspect_process reads of /proc/PID, each read bounded (procfs.hpp);
// all but cgroup are chosen by the process's owner. nullopt: not readable.
struct ProcTexts {
  std::string exe;                     // the exe link's target ("" when unreadable)
  std::optional<std::string> maps;     // another user's process without CAP_PERFMON
  std::optional<std::string> comm;     // raw, with its newline
  std::optional<std::string> cmdline;  // arguments joined by spaces (join_cmdline)
  std::optional<std::string> cgroup;
  // The pid is this process, or its exe is this program's file.
  bool runs_this_binary = false;
};

// The judgement half of inspect_process, from the texts alone: no file is
// read (fuzz/procinfo_fuzz.cpp feeds it any bytes). nullopt when neither comm
// nor maps could be read: the process is gone.
std::optional<ProcInfo> classify_process(std::uint32_t pid, const ProcTexts& t);

// Python, Gevent, Uvloop, Eventlet, Twisted or Asyncio for a Python process
// (frameworks.hpp), Epoll for another.
LoopKind loop_kind(const ProcInfo& p);

}  // namespace loopstall
