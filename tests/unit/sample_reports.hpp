// Stall reports covering every shape of the JSON output: produced by the real
// correlator (ongoing + final, gevent / asyncio / epoll) and built by hand
// (Python stacks, native frames, nulls, odd strings). Used by test_json.cpp
// and by the json_schema ctest (json_samples_main.cpp).
#pragma once

#include <vector>

#include "loopstall/correlator.hpp"
#include "test_util.hpp"

namespace loopstall::test {

inline std::vector<StallReport> sample_reports() {
  CapturingSink sink;
  Selection sel;
  sel.all_loops = true;
  auto inspect = [](std::uint32_t pid) -> std::optional<ProcInfo> {
    ProcInfo p;
    p.pid = pid;
    p.comm = "proc" + std::to_string(pid);
    if (pid == 100 || pid == 200) {
      p.python = true;
      p.native_loop = pid == 100 ? LoopKind::Gevent : LoopKind::Python;
      p.python_version = pid == 100 ? "3.11" : "3.8";
      p.exe = "/usr/bin/python3.11";
      p.service = "gunicorn.service";
    } else {
      p.exe = "/usr/sbin/nginx";
    }
    return p;
  };
  Correlator c(sel, 100, sink, inspect);
  for (std::uint32_t pid : {100u, 200u, 300u}) c.classify(pid);
  c.set_stack_loop(200, LoopKind::Asyncio);  // its loop thread's stack showed asyncio
  constexpr std::uint64_t t0 = 7'000 * kSec;

  // gevent, stuck in futex: ongoing, then final.
  ls_loop l = make_loop(101, 100, t0);
  l.on_cpu_ns = 3 * kMs;
  l.gc_ns = 1 * kMs;
  l.last_ts_ns = t0 + 3 * kMs;
  l.run_state = LS_BLOCKED;
  l.cur_syscall = 202;
  c.on_scan({l}, t0 + 123'456'789);
  ls_loop fin = l;
  fin.blocked_ns = 400 * kMs;
  fin.runq_ns = 1'234'567;
  add_slot(fin, 202, 2, 399 * kMs);
  fin.syscalls[LS_MAX_SYSCALLS] = {LS_SYSCALL_OTHER, 1, 1 * kMs};
  c.on_stall(make_stall_event(fin, t0 + 3 * kMs + 400 * kMs + 1'234'567, "gevent-worker"));

  // asyncio, CPU-bound in GC, runnable at the end.
  ls_loop a = make_loop(201, 200, t0 + kSec);
  a.on_cpu_ns = 180 * kMs;
  a.gc_ns = 150 * kMs;
  a.runq_ns = 20 * kMs;
  c.on_stall(make_stall_event(a, t0 + kSec + 200 * kMs, "asyncio"));

  // Non-Python epoll loop: python_version null, sleeping in clock_nanosleep.
  ls_loop e = make_loop(301, 300, t0 + 2 * kSec);
  e.on_cpu_ns = 1 * kMs;
  e.last_ts_ns = t0 + 2 * kSec + 1 * kMs;
  e.run_state = LS_BLOCKED;
  e.cur_syscall = 230;
  c.on_scan({e}, t0 + 2 * kSec + 250 * kMs);

  // Waiting for a CPU, in a thread whose name is not UTF-8.
  ls_loop g = make_loop(302, 300, t0 + 3 * kSec);
  g.runq_ns = 300 * kMs;
  c.on_stall(make_stall_event(g, t0 + 3 * kSec + 300 * kMs, "\xff\xfe bad utf8"));

  std::vector<StallReport> out = sink.reports;

  // By hand: stacks and native frames (the correlator only copies in what the Detector read).
  StallReport r;
  r.stall_id = "555-1a2b3c";
  r.pid = 555;
  r.tid = 556;
  r.comm = "uwsgi";
  r.exe = "/opt/\xc3\xa9t\xc3\xa9/bin/uwsgi";  // valid UTF-8, not ASCII
  r.service = "";
  r.loop = LoopKind::Gevent;
  r.python_version = "3.12";
  r.start_unix_ns = 1'700'000'000'123'456'789LL;
  r.duration_ms = 1234.5678901;
  r.threshold_ms = 100;
  r.ongoing = false;
  r.cause = Cause::Gc;
  r.breakdown = {1000.1234561, 200.2222222, 34.2222118, 800.0000004};
  r.syscalls = {{202, "futex", 150.5555555, 4}, {0, "read", 49.6666667, 1}};
  r.python_stacks = {
      {42, {{"Handler.handle", "/srv/app/handler.py", 120}, {"<module>", "/srv/app/main.py", std::nullopt}}},
      {1, {{"gc_collect", "<frozen gc>", 0}}},
  };
  r.native_stack = {{"PyObject_GC_Collect", "/usr/lib/libpython3.12.so.1.0", 0x1a2b3c},
                    {"", "/usr/lib/x86_64-linux-gnu/libc.so.6", 0}};
  out.push_back(r);

  r.stall_id = "555-1a2b3d";
  r.ongoing = true;
  r.python_version = std::nullopt;
  r.loop = LoopKind::Epoll;
  r.cause = Cause::Runqueue;
  r.comm = std::string("a\0b", 3);  // control characters must be escaped
  r.python_stacks = {{3, {{"f\"quoted\"", "C:\\odd\\path.py", -1}}}};
  out.push_back(r);

  // A coalescer's summary of repeats (daemon/sinks/event_coalescer.cpp).
  r.stall_id = "555-1a2b3e";
  r.ongoing = false;
  r.duration_ms = 151.25;
  r.cause = Cause::BlockingSyscall;
  r.breakdown = {1.25, 150, 0, 0};
  r.coalesced = Coalesced{37, 5555.5, 151.25, 1'700'000'000'000'000'000LL, 1'700'000'009'800'000'000LL, 10};
  out.push_back(r);
  return out;
}

}  // namespace loopstall::test
