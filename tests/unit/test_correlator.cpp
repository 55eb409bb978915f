// Correlator: process selection, final and ongoing reports, totals.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>

#include "loopstall/clock.hpp"
#include "loopstall/correlator.hpp"
#include "loopstall/decode.hpp"
#include "test_util.hpp"

using namespace loopstall;
using namespace loopstall::test;

namespace {

constexpr std::uint64_t T0 = 5'000 * kSec;

// What a fake /proc says; a test changes it to simulate exec, gevent imports
// or a process exiting.
struct FakeProcs {
  std::map<std::uint32_t, ProcInfo> procs;
  std::map<std::uint32_t, int> calls;

  ProcInspector inspector() {
    return [this](std::uint32_t pid) -> std::optional<ProcInfo> {
      calls[pid]++;
      auto it = procs.find(pid);
      if (it == procs.end()) return std::nullopt;
      return it->second;
    };
  }
  ProcInfo& add(std::uint32_t pid, bool python, bool gevent, std::string comm = "proc") {
    ProcInfo p;
    p.pid = pid;
    p.python = python;
    p.native_loop = !python ? LoopKind::Epoll : gevent ? LoopKind::Gevent : LoopKind::Python;
    if (python) p.python_version = "3.11";
    p.exe = python ? "/usr/bin/python3.11" : "/usr/sbin/nginx";
    p.comm = std::move(comm);
    p.service = "app.service";
    return procs[pid] = p;
  }
};

struct Fixture {
  FakeProcs fake;
  CapturingSink sink;
  Selection sel;
  double threshold_ms = 100;

  Correlator make() { return Correlator(sel, threshold_ms, sink, fake.inspector()); }
};

// A stall of `dur` that spent it blocked in futex.
ls_loop blocked_loop(std::uint32_t tid, std::uint32_t pid, std::uint64_t start, std::uint64_t dur) {
  ls_loop l = make_loop(tid, pid, start);
  l.on_cpu_ns = dur / 10;
  l.blocked_ns = dur - dur / 10;
  add_slot(l, 202, 3, l.blocked_ns);
  l.last_ts_ns = start + dur;
  return l;
}

}  // namespace

TEST_CASE("correlator: classify") {
  Fixture f;
  f.fake.add(10, true, true);
  f.fake.add(11, true, false);
  f.fake.add(12, false, false);

  SUBCASE("every process: Python is watched, the rest ignored") {
    Correlator c = f.make();
    CHECK(c.classify(10) == LS_PROC_WATCH);
    CHECK(c.classify(11) == LS_PROC_WATCH);
    CHECK(c.classify(12) == LS_PROC_IGNORE);
    CHECK(c.classify(99) == LS_PROC_IGNORE);  // gone before we looked
  }
  SUBCASE("all_loops watches non-Python loops too") {
    f.sel.all_loops = true;
    Correlator c = f.make();
    CHECK(c.classify(12) == LS_PROC_WATCH);
    CHECK(c.classify(10) == LS_PROC_WATCH);
    CHECK(c.classify(99) == LS_PROC_IGNORE);
  }
  SUBCASE("a pid selection ignores other processes without inspecting them") {
    f.sel.pids = {11, 12};
    Correlator c = f.make();
    CHECK(c.classify(10) == LS_PROC_IGNORE);
    CHECK(f.fake.calls[10] == 0);
    CHECK(c.classify(11) == LS_PROC_WATCH);
    CHECK(c.classify(12) == LS_PROC_IGNORE);  // selected but not Python
  }
  SUBCASE("pid selection with all_loops") {
    f.sel.pids = {12};
    f.sel.all_loops = true;
    Correlator c = f.make();
    CHECK(c.classify(12) == LS_PROC_WATCH);
    CHECK(c.classify(10) == LS_PROC_IGNORE);
  }
  SUBCASE("classify looks again (exec)") {
    Correlator c = f.make();
    CHECK(c.classify(12) == LS_PROC_IGNORE);
    CHECK_FALSE(c.watches(12));
    f.fake.add(12, true, false);  // nginx exec'd a Python
    CHECK(c.classify(12) == LS_PROC_WATCH);
    CHECK(c.watches(12));
    f.fake.add(12, false, false);  // and back
    CHECK(c.classify(12) == LS_PROC_IGNORE);
    CHECK_FALSE(c.watches(12));
  }
  SUBCASE("an accept policy narrows the choice") {
    f.sel.all_loops = true;
    f.sel.accept = [](const ProcInfo& p) { return p.comm != "skipme"; };
    f.fake.add(13, true, true, "skipme");
    Correlator c = f.make();
    CHECK(c.classify(13) == LS_PROC_IGNORE);
    CHECK(c.classify(12) == LS_PROC_WATCH);
    CHECK(c.classify(10) == LS_PROC_WATCH);
    CHECK(c.watched_processes() == 2);
  }
}

TEST_CASE("correlator: events of processes it does not watch are ignored") {
  Fixture f;
  f.fake.add(100, true, true);
  f.fake.add(200, false, false);
  Correlator c = f.make();
  REQUIRE(c.classify(200) == LS_PROC_IGNORE);  // 100 never classified, 200 not Python
  for (std::uint32_t pid : {100u, 200u}) {
    ls_loop l = blocked_loop(pid + 1, pid, T0, 500 * kMs);
    l.iterations = 9;
    c.on_stall(make_stall_event(l, T0 + 500 * kMs, "w"));
    c.on_scan({l}, T0 + 500 * kMs);
    c.flush_ongoing({l}, T0 + 500 * kMs);
    c.on_loop_exit(make_stall_event(l, T0 + 500 * kMs, "w"));
  }
  CHECK(f.sink.reports.empty());
  CHECK(f.sink.iteration_calls.empty());
  CHECK(c.ongoing_count() == 0);
  CHECK(c.summary(1).processes.empty());
}

TEST_CASE("correlator: a final report") {
  Fixture f;
  f.fake.add(100, true, true, "gunicorn");
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);

  ls_loop l = blocked_loop(101, 100, T0, 250 * kMs);
  l.iterations = 7;
  add_slot(l, 0, 1, 0);  // read, no time
  c.on_stall(make_stall_event(l, T0 + 250 * kMs, "worker-1"));

  REQUIRE(f.sink.reports.size() == 1);
  const StallReport& r = f.sink.reports[0];
  CHECK(r.stall_id == make_stall_id(101, T0));
  CHECK(r.pid == 100);
  CHECK(r.tid == 101);
  CHECK(r.comm == "worker-1");  // the thread's own name, not the process's
  CHECK(r.exe == "/usr/bin/python3.11");
  CHECK(r.service == "app.service");
  CHECK(r.loop == LoopKind::Gevent);
  CHECK(r.python_version == "3.11");
  CHECK_FALSE(r.ongoing);
  CHECK(r.duration_ms == doctest::Approx(250.0));
  CHECK(r.threshold_ms == doctest::Approx(100.0));
  CHECK(r.cause == Cause::BlockingSyscall);
  CHECK(r.breakdown.blocked_ms == doctest::Approx(225.0));
  CHECK(r.breakdown.on_cpu_ms == doctest::Approx(25.0));
  REQUIRE(r.syscalls.size() == 2);
  CHECK(r.syscalls[0].name == "futex");
  CHECK(r.syscalls[0].count == 3);
  CHECK(r.syscalls[1].name == "read");
  // Wall clock: CLOCK_MONOTONIC start shifted by the realtime offset.
  const std::int64_t offset = realtime_ns() - static_cast<std::int64_t>(monotonic_ns());
  CHECK(std::llabs(r.start_unix_ns - (offset + static_cast<std::int64_t>(T0))) < static_cast<long long>(kSec));
  // The summary's culprit: no Python stack here, so the syscall it blocked in.
  const Summary sum = c.summary(1);
  const ProcessTotals& t = sum.processes.at(100);
  CHECK(t.top_culprit() == "[blocked in futex]");
  CHECK(t.culprit_ms.at("[blocked in futex]") == doctest::Approx(250.0));
}

TEST_CASE("correlator: report details by process kind") {
  Fixture f;
  f.sel.all_loops = true;
  f.fake.add(200, true, false, "asyncio-app");
  f.fake.add(300, false, false, "nginx");
  Correlator c = f.make();
  REQUIRE(c.classify(200) == LS_PROC_WATCH);
  REQUIRE(c.classify(300) == LS_PROC_WATCH);

  SUBCASE("asyncio") {
    c.set_stack_loop(200, LoopKind::Asyncio);
    c.on_stall(make_stall_event(blocked_loop(201, 200, T0, 150 * kMs), T0 + 150 * kMs, nullptr));
    REQUIRE(f.sink.reports.size() == 1);
    CHECK(f.sink.reports[0].loop == LoopKind::Asyncio);
    CHECK(f.sink.reports[0].comm == "asyncio-app");  // no thread name: the process's
  }
  SUBCASE("epoll, no Python version") {
    c.on_stall(make_stall_event(blocked_loop(301, 300, T0, 150 * kMs), T0 + 150 * kMs, ""));
    REQUIRE(f.sink.reports.size() == 1);
    CHECK(f.sink.reports[0].loop == LoopKind::Epoll);
    CHECK_FALSE(f.sink.reports[0].python_version.has_value());
    CHECK(f.sink.reports[0].comm == "nginx");
  }
  SUBCASE("the process is gone from /proc: what was learnt at classification is kept") {
    c.set_stack_loop(200, LoopKind::Asyncio);
    f.fake.procs.erase(200);
    c.on_stall(make_stall_event(blocked_loop(201, 200, T0, 150 * kMs), T0 + 150 * kMs, "dead"));
    REQUIRE(f.sink.reports.size() == 1);
    CHECK(f.sink.reports[0].pid == 200);
    CHECK(f.sink.reports[0].comm == "dead");
    CHECK(f.sink.reports[0].exe == "/usr/bin/python3.11");
    CHECK(f.sink.reports[0].loop == LoopKind::Asyncio);
    CHECK(f.sink.reports[0].python_version == "3.11");
  }
  SUBCASE("a 16-byte thread name without a terminating NUL") {
    c.on_stall(make_stall_event(blocked_loop(201, 200, T0, 150 * kMs), T0 + 150 * kMs, "abcdefghijklmnopqrstuvwxyz"));
    REQUIRE(f.sink.reports.size() == 1);
    CHECK(f.sink.reports[0].comm == "abcdefghijklmnop");
  }
}

TEST_CASE("correlator: iterations under the userspace threshold are not reported") {
  Fixture f;
  f.fake.add(100, true, true);
  f.threshold_ms = 100;
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0, 99 * kMs), T0 + 99 * kMs, "w"));
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0 + kSec, 99'999'999), T0 + kSec + 99'999'999, "w"));
  CHECK(f.sink.reports.empty());
  CHECK(c.summary(1).processes[100].stalls == 0);
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0 + 2 * kSec, 100 * kMs), T0 + 2 * kSec + 100 * kMs, "w"));
  CHECK(f.sink.reports.size() == 1);  // exactly the threshold counts

  c.set_threshold_ms(500);
  CHECK(c.threshold_ms() == 500);
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0 + 3 * kSec, 300 * kMs), T0 + 3 * kSec + 300 * kMs, "w"));
  CHECK(f.sink.reports.size() == 1);
}

TEST_CASE("correlator: ongoing reports") {
  Fixture f;
  f.fake.add(100, true, true, "gunicorn");
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);

  // A loop stuck in futex since T0, as successive scans see it.
  auto snapshot = [] {
    ls_loop l = make_loop(101, 100, T0);
    l.on_cpu_ns = 5 * kMs;
    l.last_ts_ns = T0 + 5 * kMs;
    l.run_state = LS_BLOCKED;
    l.cur_syscall = 202;
    return l;
  };
  std::vector<ls_loop> idle_loop{make_loop(102, 100, 0)};  // in epoll_wait: iter_start 0
  idle_loop.push_back(snapshot());

  c.on_scan(idle_loop, T0 + 50 * kMs);
  CHECK(f.sink.reports.empty());  // not yet over the threshold
  CHECK(c.ongoing_count() == 0);

  c.on_scan(idle_loop, T0 + 100 * kMs);
  REQUIRE(f.sink.reports.size() == 1);
  {
    const StallReport& r = f.sink.reports[0];
    CHECK(r.ongoing);
    CHECK(r.tid == 101);
    CHECK(r.pid == 100);
    CHECK(r.stall_id == make_stall_id(101, T0));
    CHECK(r.duration_ms == doctest::Approx(100.0));
    CHECK(r.breakdown.blocked_ms == doctest::Approx(95.0));
    CHECK(r.cause == Cause::BlockingSyscall);
    REQUIRE(r.syscalls.size() == 1);
    CHECK(r.syscalls[0].name == "futex");
    CHECK(r.loop == LoopKind::Gevent);
    CHECK(r.comm == "gunicorn");
  }
  CHECK(c.ongoing_count() == 1);

  // Not again before kOngoingRepeatNs.
  for (std::uint64_t t = 200 * kMs; t < 100 * kMs + Correlator::kOngoingRepeatNs; t += 700 * kMs)
    c.on_scan(idle_loop, T0 + t);
  c.on_scan(idle_loop, T0 + 100 * kMs + Correlator::kOngoingRepeatNs - 1);
  CHECK(f.sink.reports.size() == 1);

  // Again after it.
  c.on_scan(idle_loop, T0 + 100 * kMs + Correlator::kOngoingRepeatNs);
  REQUIRE(f.sink.reports.size() == 2);
  CHECK(f.sink.reports[1].ongoing);
  CHECK(f.sink.reports[1].stall_id == f.sink.reports[0].stall_id);
  CHECK(f.sink.reports[1].duration_ms == doctest::Approx(100.0 + Correlator::kOngoingRepeatNs / 1e6));
  // The contract wants one at least every 10 s.
  CHECK(Correlator::kOngoingRepeatNs <= 10 * kSec);

  // The loop returns: one final report with the same id.
  const std::uint64_t end = T0 + 100 * kMs + Correlator::kOngoingRepeatNs + 300 * kMs;
  ls_loop fin = snapshot();
  fin.blocked_ns = end - fin.last_ts_ns;
  add_slot(fin, 202, 1, fin.blocked_ns);
  fin.last_ts_ns = end;
  c.on_stall(make_stall_event(fin, end, "gunicorn"));
  REQUIRE(f.sink.reports.size() == 3);
  const StallReport& r = f.sink.reports[2];
  CHECK_FALSE(r.ongoing);
  CHECK(r.stall_id == f.sink.reports[0].stall_id);
  CHECK(r.duration_ms == doctest::Approx((end - T0) / 1e6));
  CHECK(c.ongoing_count() == 0);

  // Back in epoll_wait: nothing more.
  std::vector<ls_loop> after{make_loop(101, 100, 0)};
  c.on_scan(after, end + 10 * kSec);
  CHECK(f.sink.reports.size() == 3);
  CHECK(c.summary(1).processes[100].stalls == 1);  // ongoing reports are not stalls
}

TEST_CASE("correlator: the final report of a stall reported ongoing comes even under a raised threshold") {
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  std::vector<ls_loop> loops{make_loop(101, 100, T0)};
  c.on_scan(loops, T0 + 120 * kMs);
  REQUIRE(f.sink.reports.size() == 1);
  c.set_threshold_ms(1000);
  ls_loop fin = make_loop(101, 100, T0);
  fin.on_cpu_ns = 130 * kMs;
  c.on_stall(make_stall_event(fin, T0 + 130 * kMs, "x"));
  REQUIRE(f.sink.reports.size() == 2);
  CHECK_FALSE(f.sink.reports[1].ongoing);
  CHECK(f.sink.reports[1].cause == Cause::Cpu);
}

TEST_CASE("correlator: ongoing stalls out of sight are forgotten") {
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  std::vector<ls_loop> loops{make_loop(101, 100, T0)};
  c.on_scan(loops, T0 + 120 * kMs);
  CHECK(c.ongoing_count() == 1);
  c.on_scan({}, T0 + 120 * kMs + Correlator::kForgetNs);
  CHECK(c.ongoing_count() == 1);
  c.on_scan({}, T0 + 120 * kMs + Correlator::kForgetNs + 1);
  CHECK(c.ongoing_count() == 0);
}

TEST_CASE("correlator: scans ignore loops in epoll_wait and snapshots from the future") {
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  std::vector<ls_loop> loops{make_loop(101, 100, 0), make_loop(102, 100, T0 + kSec)};
  c.on_scan(loops, T0);
  CHECK(f.sink.reports.empty());
  CHECK(c.ongoing_count() == 0);
}

TEST_CASE("correlator: flush_ongoing reports every stall in progress once more") {
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  std::vector<ls_loop> loops{make_loop(101, 100, T0), make_loop(102, 100, T0 + 150 * kMs), make_loop(103, 100, 0)};
  c.on_scan(loops, T0 + 200 * kMs);
  REQUIRE(f.sink.reports.size() == 1);
  c.flush_ongoing(loops, T0 + 300 * kMs);  // before the repeat interval: still reported
  REQUIRE(f.sink.reports.size() == 3);
  CHECK(f.sink.reports[1].ongoing);
  CHECK(f.sink.reports[1].tid == 101);
  CHECK(f.sink.reports[1].duration_ms == doctest::Approx(300.0));
  CHECK(f.sink.reports[2].tid == 102);
  CHECK(f.sink.reports[2].duration_ms == doctest::Approx(150.0));
}

TEST_CASE("correlator: stalls in progress at the end count in the summary") {
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  std::vector<ls_loop> loops{make_loop(101, 100, T0), make_loop(102, 100, T0 + 250 * kMs)};
  c.flush_ongoing(loops, T0 + 2 * kSec);
  const Summary s = c.summary(2);
  const ProcessTotals& t = s.processes.at(100);
  CHECK(t.stalls == 0);
  CHECK(t.in_progress == 2);
  CHECK(t.in_progress_max_ms == doctest::Approx(2000.0));
  CHECK(t.in_progress_ms == doctest::Approx(3750.0));
  REQUIRE(f.sink.reports.size() == 2);
  CHECK(f.sink.reports[0].ongoing);
  // A hung loop's time has a culprit too (by the report's cause here: no stack).
  REQUIRE(t.culprit_ms.size() == 1);
  CHECK(t.culprit_ms.begin()->second == doctest::Approx(3750.0));
  CHECK(t.top_culprit() == "[" + std::string(to_string(f.sink.reports[0].cause)) + "]");
}

TEST_CASE("correlator: an adopted iteration's start is marked estimated, the next one's is not") {
  Fixture f;
  f.fake.add(100, true, true);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  ls_loop l = make_loop(101, 100, T0);
  l.adopted_start_ns = T0;
  c.on_scan({l}, T0 + 200 * kMs);
  REQUIRE(f.sink.reports.size() == 1);
  CHECK(f.sink.reports[0].start_estimated);
  l.iter_start_ns = T0 + kSec;  // BPF began the next iteration
  c.on_scan({l}, T0 + kSec + 200 * kMs);
  REQUIRE(f.sink.reports.size() == 2);
  CHECK_FALSE(f.sink.reports[1].start_estimated);
}

TEST_CASE("correlator: a capture counts iterations from its baseline") {
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  ls_loop a = make_loop(101, 100, 0);
  a.iterations = 5000;  // since the daemon began watching
  a.hist[3] = 5000;
  c.set_baseline({a});
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  a.iterations = 5040;
  a.hist[3] = 5040;
  c.on_scan({a}, T0);
  CHECK(c.summary(1).processes[100].iterations == 40);
  CHECK(c.summary(1).processes[100].hist[3] == 40);
}

TEST_CASE("correlator: a stall event older than the last scan adds no iterations") {
  // The daemon has watched the loop for 5000 iterations; a capture starts
  // (baseline), a scan reads 5040, then the final event of a stall that ended
  // at iteration 5030 comes out of the ring buffer.
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  ls_loop a = make_loop(101, 100, T0);
  a.iterations = 5000;
  a.hist[3] = 5000;
  c.set_baseline({a});
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  ls_loop scanned = a;
  scanned.iterations = 5040;
  scanned.hist[3] = 5040;
  scanned.iter_start_ns = 0;
  c.on_scan({scanned}, T0 + kSec);
  ls_stall_event e{};
  e.loop = a;
  e.loop.iterations = 5030;
  e.loop.hist[3] = 5030;
  e.end_ns = T0 + 300'000'000;
  c.on_stall(e);
  const auto sum = c.summary(1);
  CHECK(sum.processes.at(100).iterations == 40);
  CHECK(sum.processes.at(100).stalls == 1);
  // The next scan counts on from there.
  scanned.iterations = 5050;
  scanned.hist[3] = 5050;
  c.on_scan({scanned}, T0 + 2 * kSec);
  CHECK(c.summary(2).processes.at(100).iterations == 50);
}

TEST_CASE("correlator: known_pids covers every process it holds state for") {
  Fixture f;
  f.fake.add(100, true, false);
  f.fake.add(200, true, false);
  Correlator c = f.make();
  c.keep_exited_totals(false);
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  ls_loop a = make_loop(201, 200, 0);
  c.set_baseline({a});
  std::unordered_set<std::uint32_t> pids;
  c.known_pids(pids);
  CHECK(pids.count(100));
  CHECK(pids.count(200));
  c.forget_process(100);
  c.forget_process(200);
  pids.clear();
  c.known_pids(pids);
  CHECK(pids.empty());
}

TEST_CASE("correlator: summary totals") {
  Fixture f;
  f.fake.add(100, true, true, "gunicorn");
  f.fake.add(200, true, false, "uvicorn");
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  REQUIRE(c.classify(200) == LS_PROC_WATCH);

  ls_loop a = make_loop(101, 100, 0), b = make_loop(102, 100, 0), d = make_loop(201, 200, 0);
  a.iterations = 10;
  b.iterations = 4;
  d.iterations = 1;
  c.on_scan({a, b, d}, T0);
  Summary s = c.summary(2.5);
  CHECK(s.elapsed_s == 2.5);
  CHECK(s.processes[100].iterations == 14);
  CHECK(s.processes[200].iterations == 1);
  // No stall yet: name and loop come from the process.
  CHECK(s.processes[100].comm == "gunicorn");
  CHECK(s.processes[100].loop == LoopKind::Gevent);
  CHECK(s.processes[200].loop == LoopKind::Python);  // no stack read yet
  CHECK(s.processes[100].stalls == 0);

  a.iterations = 25;  // cumulative counters: only the difference counts
  c.on_scan({a, b, d}, T0 + kSec);
  c.on_scan({a, b, d}, T0 + 2 * kSec);
  CHECK(c.summary(1).processes[100].iterations == 29);

  ls_loop st = blocked_loop(101, 100, T0 + 3 * kSec, 300 * kMs);
  st.iterations = 26;
  c.on_stall(make_stall_event(st, T0 + 3 * kSec + 300 * kMs, "w1"));
  ls_loop st2 = blocked_loop(102, 100, T0 + 4 * kSec, 120 * kMs);
  st2.iterations = 5;
  c.on_stall(make_stall_event(st2, T0 + 4 * kSec + 120 * kMs, "w2"));
  c.add_lost(3);
  c.add_lost(2);

  s = c.summary(10);
  CHECK(s.lost_events == 5);
  REQUIRE(s.processes.size() == 2);
  const ProcessTotals& t = s.processes[100];
  CHECK(t.iterations == 31);
  CHECK(t.stalls == 2);
  CHECK(t.max_stall_ms == doctest::Approx(300.0));
  CHECK(t.stalled_ms == doctest::Approx(420.0));
  CHECK(t.loop == LoopKind::Gevent);

  // A loop thread exits with its final counters; its tid may come back.
  ls_loop ex = make_loop(101, 100, 0);
  ex.iterations = 30;
  c.on_loop_exit(make_stall_event(ex, T0 + 5 * kSec, "w1"));
  CHECK(c.summary(1).processes[100].iterations == 35);
  ls_loop reborn = make_loop(101, 100, 0);
  reborn.iterations = 2;
  c.on_scan({reborn}, T0 + 6 * kSec);
  CHECK(c.summary(1).processes[100].iterations == 37);
}

TEST_CASE("correlator: forget_process") {
  Fixture f;
  f.fake.add(100, true, false, "old");
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  ls_loop a = make_loop(101, 100, 0);
  a.iterations = 10;
  c.on_scan({a}, T0);
  CHECK(c.summary(1).processes[100].iterations == 10);

  c.forget_process(100);
  CHECK_FALSE(c.watches(100));
  CHECK(c.watched_processes() == 0);
  // Its loops are not followed any more.
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0 + kSec, 200 * kMs), T0 + kSec + 200 * kMs, ""));
  CHECK(f.sink.reports.empty());

  SUBCASE("the pid is reused: counting starts anew, the process is looked up again") {
    f.fake.add(100, true, true, "new");
    REQUIRE(c.classify(100) == LS_PROC_WATCH);
    a.iterations = 3;
    c.on_scan({a}, T0 + 2 * kSec);
    CHECK(c.summary(1).processes[100].iterations == 13);  // a capture keeps exited totals
    c.on_stall(make_stall_event(blocked_loop(101, 100, T0 + 3 * kSec, 200 * kMs), T0 + 3 * kSec + 200 * kMs, ""));
    REQUIRE(f.sink.reports.size() == 1);
    CHECK(f.sink.reports[0].comm == "new");  // not the cached "old"
    CHECK(f.sink.reports[0].loop == LoopKind::Gevent);
  }
  SUBCASE("totals kept by default") {
    CHECK(c.summary(1).processes.count(100) == 1);
  }
}

TEST_CASE("correlator: a daemon does not keep totals of exited processes") {
  Fixture f;
  f.fake.add(100, true, false);
  f.fake.add(200, true, false);
  Correlator c = f.make();
  c.keep_exited_totals(false);
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  REQUIRE(c.classify(200) == LS_PROC_WATCH);
  ls_loop a = make_loop(101, 100, 0), b = make_loop(201, 200, 0);
  a.iterations = b.iterations = 4;
  c.on_scan({a, b}, T0);
  c.forget_process(100);
  const Summary s = c.summary(1);
  CHECK(s.processes.count(100) == 0);
  CHECK(s.processes.count(200) == 1);
}

TEST_CASE("correlator: iteration deltas go to the sink with the service label") {
  Fixture f;
  f.fake.add(100, true, true, "gunicorn");  // service app.service
  f.fake.add(200, true, true, "worker").service = "";
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  REQUIRE(c.classify(200) == LS_PROC_WATCH);
  CHECK(c.service_of(100) == "app.service");
  CHECK(c.service_of(200) == "");  // as the inspector named it: no fallback of the correlator's own
  CHECK(c.service_of(999) == "");
  CHECK(c.loop_kind_of(100) == LoopKind::Gevent);
  CHECK(c.loop_kind_of(999) == LoopKind::Epoll);

  ls_loop a = make_loop(101, 100, 0), b = make_loop(201, 200, 0);
  a.iterations = 5;
  b.iterations = 2;
  c.on_scan({a, b}, T0);
  a.iterations = 12;
  c.on_scan({a, b}, T0 + kSec);  // b unchanged: no call for it
  REQUIRE(f.sink.iteration_calls.size() == 3);
  CHECK(f.sink.iteration_calls[0].pid == 100);
  CHECK(f.sink.iteration_calls[0].service == "app.service");
  CHECK(f.sink.iteration_calls[0].delta == 5);
  CHECK(f.sink.iteration_calls[1].pid == 200);
  CHECK(f.sink.iteration_calls[1].service == "");
  CHECK(f.sink.iteration_calls[1].delta == 2);
  CHECK(f.sink.iteration_calls[2].pid == 100);
  CHECK(f.sink.iteration_calls[2].delta == 7);
}

TEST_CASE("correlator: longest iteration in progress") {
  Fixture f;
  f.fake.add(100, true, false);
  f.fake.add(200, true, false);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  std::vector<ls_loop> loops{make_loop(101, 100, T0), make_loop(102, 100, T0 + 30 * kMs), make_loop(103, 100, 0),
                             make_loop(201, 200, T0 - 10 * kSec)};  // 200 is not watched
  c.on_scan(loops, T0 + 50 * kMs);
  CHECK(c.longest_ongoing_ns() == 50 * kMs);
  c.on_scan({make_loop(103, 100, 0)}, T0 + 60 * kMs);
  CHECK(c.longest_ongoing_ns() == 0);
}

TEST_CASE("correlator: scans do not read /proc again for every iteration delta") {
  // Scans run every 20 ms for every loop; inspecting a process means reading
  // and parsing its maps file.
  Fixture f;
  f.fake.add(100, true, false);  // asyncio: the case looked at again for gevent
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  const int before = f.fake.calls[100];
  ls_loop a = make_loop(101, 100, 0);
  for (int i = 1; i <= 50; ++i) {
    a.iterations = static_cast<std::uint64_t>(i) * 100;
    c.on_scan({a}, T0 + static_cast<std::uint64_t>(i) * 20 * kMs);
  }
  CHECK(f.fake.calls[100] - before <= 1);
}

TEST_CASE("correlator: gevent imported after the first classification") {
  Fixture f;
  f.fake.add(100, true, false);
  Correlator c = f.make();
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0, 150 * kMs), T0 + 150 * kMs, "w"));
  REQUIRE(f.sink.reports.size() == 1);
  CHECK(f.sink.reports[0].loop == LoopKind::Python);

  f.fake.procs[100].native_loop = LoopKind::Gevent;  // `import gevent` happened
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0 + kSec, 150 * kMs), T0 + kSec + 150 * kMs, "w"));
  REQUIRE(f.sink.reports.size() == 2);
  CHECK(f.sink.reports[1].loop == LoopKind::Gevent);

  // Once gevent, the process is not inspected for every report any more.
  const int calls = f.fake.calls[100];
  c.on_stall(make_stall_event(blocked_loop(101, 100, T0 + 2 * kSec, 150 * kMs), T0 + 2 * kSec + 150 * kMs, "w"));
  CHECK(f.fake.calls[100] == calls);
  CHECK(f.sink.reports[2].loop == LoopKind::Gevent);
}
