// The userspace model of one stall: what every sink (JSON, text, metrics,
// alerts) consumes. Mirrors docs/contract/stall-event.schema.json.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loopstall {

// The loop's framework (contract: "loop"). Asyncio covers what runs on
// asyncio's selector loop (aiohttp, tornado); Python is a Python loop of no
// known framework, Epoll a non-Python one. How each is recognised:
// daemon/core/frameworks.cpp.
enum class LoopKind { Gevent, Asyncio, Uvloop, Eventlet, Twisted, Python, Epoll };
inline constexpr std::array kLoopKinds = {LoopKind::Gevent,  LoopKind::Asyncio, LoopKind::Uvloop, LoopKind::Eventlet,
                                          LoopKind::Twisted, LoopKind::Python,  LoopKind::Epoll};
enum class Cause { Cpu, BlockingSyscall, Runqueue, Gc };

std::string_view to_string(LoopKind k);
std::string_view to_string(Cause c);

struct Breakdown {
  double on_cpu_ms = 0;  // includes gc_ms
  double blocked_ms = 0;
  double runqueue_ms = 0;
  double gc_ms = 0;
};

struct SyscallTime {
  int nr = 0;
  std::string name;
  double ms = 0;
  std::uint64_t count = 0;
};

struct PyFrame {
  std::string function;
  std::string file;
  std::optional<int> line;
  bool operator==(const PyFrame&) const = default;
};

struct PyStack {
  std::uint64_t samples = 0;
  std::vector<PyFrame> frames;  // innermost first
};

struct NativeFrame {
  std::string symbol;
  std::string module;
  std::uint64_t offset = 0;
  bool operator==(const NativeFrame&) const = default;
};

// A summary of repeats (daemon/sinks/event_coalescer.cpp): the report it
// rides on is the longest of `count` final stalls of one loop with one
// culprit, which were not written one by one.
struct Coalesced {
  std::uint64_t count = 0;
  double total_ms = 0, max_ms = 0;
  std::int64_t first_start_unix_ns = 0, last_start_unix_ns = 0;
  double window_s = 0;
};

struct StallReport {
  std::string stall_id;
  std::uint32_t pid = 0;
  std::uint32_t tid = 0;
  std::string comm;
  std::string exe;
  std::string service;
  LoopKind loop = LoopKind::Epoll;
  std::optional<std::string> python_version;
  std::int64_t start_unix_ns = 0;
  // The iteration began before loopstall could see it (attached mid-hang):
  // start_unix_ns is an estimate, duration_ms at least what was observed.
  bool start_estimated = false;
  double duration_ms = 0;
  double threshold_ms = 0;
  bool ongoing = false;
  Cause cause = Cause::Cpu;
  Breakdown breakdown;
  std::vector<SyscallTime> syscalls;  // most blocked time first
  std::vector<PyStack> python_stacks;
  std::vector<NativeFrame> native_stack;
  std::optional<Coalesced> coalesced;  // only on a coalescer's summary
};

// The largest of on-CPU outside GC, blocked, runnable-waiting and GC time.
Cause classify_cause(const Breakdown& b);

// One line naming what a stall was doing: cause, main syscall, innermost
// Python function ("cpu at parse", "blocking_syscall in flock at save").
std::string culprit_summary(const StallReport& r);

// How text output names a frame, py-spy style: `function (file.py:line)`,
// `symbol (libc.so.6)`, with the file's or module's base name only (the
// JSON keeps full paths). Raw: escape with printable() before printing.
std::string frame_label(const PyFrame& f);
std::string frame_label(const NativeFrame& f);

// Whether a native frame is the interpreter's own code (the Python
// executable or libpython), not a C library the loop called into.
bool in_interpreter(const NativeFrame& f, const StallReport& r);

// What a stall's time went to, most first: its Python stacks' innermost
// functions (`function (file.py)`: the lines of one function are one
// culprit) sharing the duration by samples; without a Python
// stack, the innermost native frame outside the interpreter, else
// "[blocked in SYSCALL]" or "[CAUSE]". The shares add up to duration_ms.
struct CulpritShare {
  std::string name;
  double ms = 0;
  const PyStack* stack = nullptr;  // the heaviest stack with that innermost frame, if any
};
std::vector<CulpritShare> culprit_shares(const StallReport& r);

}  // namespace loopstall
