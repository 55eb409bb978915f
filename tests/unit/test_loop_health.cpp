// Loop health (issue 13): busy time and reads accounted from the BPF
// counters, the summary's JSON round trip, and top's rates.
#include <doctest/doctest.h>

#include "loopstall/correlator.hpp"
#include "loopstall/loop_health.hpp"
#include "test_util.hpp"

using namespace loopstall;
using namespace loopstall::test;

namespace {

ProcInspector python_procs() {
  return [](std::uint32_t pid) -> std::optional<ProcInfo> {
    ProcInfo p;
    p.pid = pid;
    p.python = true;
    p.native_loop = LoopKind::Python;
    p.python_version = "3.11";
    p.exe = "/usr/bin/python3.11";
    p.comm = "web";
    p.service = "web.service";
    return p;
  };
}

ProcessTotals totals(std::uint64_t iterations, std::uint64_t busy_ns, std::uint64_t reads, std::uint64_t bytes) {
  ProcessTotals t;
  t.comm = "web";
  t.service = "web.service";
  t.loop = LoopKind::Gevent;
  t.loop_threads = 1;
  t.iterations = iterations;
  t.hist[5] = iterations;  // every iteration 16..32 us
  t.busy_on_cpu_ns = busy_ns;
  t.reads = reads;
  t.read_bytes = bytes;
  return t;
}

}  // namespace

TEST_CASE("loop health: busy time and reads reach the sink and the summary as deltas") {
  CapturingSink sink;
  Correlator c(Selection{}, 100, sink, python_procs());
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  ls_loop l = make_loop(101, 100, 0);
  l.iterations = 10;
  l.busy_on_cpu_ns = 6'000'000;
  l.busy_blocked_ns = 3'000'000;
  l.busy_runq_ns = 1'000'000;
  l.reads = 40;
  l.read_bytes = 40;
  c.on_scan({l}, kSec);
  l.iterations = 30;
  l.busy_on_cpu_ns = 16'000'000;
  l.reads = 100;
  l.read_bytes = 100;
  c.on_scan({l}, 2 * kSec);
  // Reads alone (a loop blocked in one long iteration still reads) are accounted.
  l.reads = 150;
  l.read_bytes = 150;
  c.on_scan({l}, 3 * kSec);
  const ProcessTotals t = c.summary(3).processes.at(100);
  CHECK(t.iterations == 30);
  CHECK(t.busy_on_cpu_ns == 16'000'000);
  CHECK(t.busy_blocked_ns == 3'000'000);
  CHECK(t.busy_runq_ns == 1'000'000);
  CHECK(t.reads == 150);
  CHECK(t.read_bytes == 150);
  CHECK(t.loop_threads == 1);
  CHECK(t.service == "web.service");
  CHECK(sink.iteration_calls.size() == 3);
}

TEST_CASE("loop health: a capture's baseline covers busy time and reads") {
  CapturingSink sink;
  Correlator c(Selection{}, 100, sink, python_procs());
  ls_loop l = make_loop(101, 100, 0);
  l.iterations = 1000;
  l.busy_on_cpu_ns = 9 * kSec;
  l.reads = 5000;
  l.read_bytes = 1 << 20;
  c.set_baseline({l});
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  l.iterations += 10;
  l.busy_on_cpu_ns += 1000;
  l.reads += 20;
  l.read_bytes += 20;
  c.on_scan({l}, kSec);
  const ProcessTotals t = c.summary(1).processes.at(100);
  CHECK(t.busy_on_cpu_ns == 1000);
  CHECK(t.reads == 20);
  CHECK(t.read_bytes == 20);
}

TEST_CASE("loop health: an ongoing stall is in the totals until its final report") {
  CapturingSink sink;
  Correlator c(Selection{}, 100, sink, python_procs());
  REQUIRE(c.classify(100) == LS_PROC_WATCH);
  ls_loop l = make_loop(101, 100, 10 * kSec);
  l.on_cpu_ns = 400'000'000;
  c.on_scan({l}, 10 * kSec + 400'000'000);
  auto t = c.summary(1).processes.at(100);
  REQUIRE(t.ongoing.has_value());
  CHECK(t.ongoing->cause == Cause::Cpu);
  CHECK(t.ongoing->duration_ms == doctest::Approx(400));
  CHECK(t.ongoing->culprit.rfind("cpu", 0) == 0);
  ls_stall_event e{};
  e.loop = l;
  e.end_ns = 10 * kSec + 500'000'000;
  c.on_stall(e);
  t = c.summary(1).processes.at(100);
  CHECK_FALSE(t.ongoing.has_value());
  CHECK(t.stalls == 1);
}

TEST_CASE("loop health: the summary survives its JSON form, and malformed JSON is refused") {
  Summary s;
  s.elapsed_s = 12.5;
  s.lost_events = 3;
  ProcessTotals t = totals(500, 2 * kSec, 900, 1200);
  t.ongoing = OngoingStall{1'700'000'000'000'000'000, 1500, Cause::BlockingSyscall, "blocking_syscall in flock"};
  s.processes[42] = t;
  const Summary back = summary_from_json(nlohmann::json::parse(summary_to_json(s).dump()));
  REQUIRE(back.processes.count(42));
  const ProcessTotals& b = back.processes.at(42);
  CHECK(back.elapsed_s == 12.5);
  CHECK(back.lost_events == 3);
  CHECK(b.service == "web.service");
  CHECK(b.loop == LoopKind::Gevent);
  CHECK(b.hist == t.hist);
  CHECK(b.busy_on_cpu_ns == 2 * kSec);
  CHECK(b.reads == 900);
  CHECK(b.read_bytes == 1200);
  REQUIRE(b.ongoing.has_value());
  CHECK(b.ongoing->cause == Cause::BlockingSyscall);
  CHECK(b.ongoing->culprit == "blocking_syscall in flock");

  nlohmann::json j = summary_to_json(s);
  j["processes"][0]["hist_log2_us"] = {1, 2};
  CHECK_THROWS_AS(summary_from_json(j), std::invalid_argument);
  j = summary_to_json(s);
  j["processes"][0]["loop"] = "node";
  CHECK_THROWS_AS(summary_from_json(j), std::invalid_argument);
  j = summary_to_json(s);
  j["processes"][0]["reads"] = "many";
  CHECK_THROWS_AS(summary_from_json(j), std::invalid_argument);
  CHECK_THROWS_AS(summary_from_json(nlohmann::json::array()), std::invalid_argument);
}

TEST_CASE("loop health: top's rates between two snapshots") {
  LoopRates rates;
  Summary a, b;
  a.processes[1] = totals(1000, 1 * kSec, 100, 100'000);  // a normal server
  a.processes[2] = totals(1000, 1 * kSec, 1000, 1000);    // a one-byte reader
  b.processes[1] = totals(3000, 1 * kSec + kSec / 10, 300, 300'000);
  b.processes[2] = totals(1500, 1 * kSec + kSec / 5, 6000, 6000);
  b.processes[3] = totals(10, 0, 0, 0);  // new: no rates yet
  CHECK(rates.update(a, 100).size() == 2);
  auto rows = rates.update(b, 102);  // two seconds later
  REQUIRE(rows.size() == 3);
  sort_rows(rows, TopSort::Pid);
  CHECK(rows[0].pid == 1);
  CHECK(rows[0].iterations_per_s == doctest::Approx(1000));
  CHECK(rows[0].utilisation == doctest::Approx(0.05));
  CHECK(rows[0].on_cpu == doctest::Approx(0.05));
  REQUIRE(rows[0].p99_ms.has_value());
  CHECK(*rows[0].p99_ms == doctest::Approx(0.032));
  CHECK(*rows[0].reads_per_iteration == doctest::Approx(0.1));
  CHECK(*rows[0].bytes_per_read == doctest::Approx(1000));
  CHECK_FALSE(rows[0].churning());
  CHECK(rows[1].pid == 2);
  CHECK(rows[1].utilisation == doctest::Approx(0.1));
  CHECK(*rows[1].reads_per_iteration == doctest::Approx(10));
  CHECK(*rows[1].bytes_per_read == doctest::Approx(1));
  CHECK(rows[1].reads_per_s == doctest::Approx(2500));
  CHECK(rows[1].churning());
  CHECK(rows[2].pid == 3);
  CHECK_FALSE(rows[2].p99_ms.has_value());
  CHECK(rows[2].iterations_per_s == 0);

  sort_rows(rows, TopSort::Churn);
  CHECK(rows[0].pid == 2);
  sort_rows(rows, TopSort::Iterations);
  CHECK(rows[0].pid == 1);
  const auto table = format_rows(rows, TopSort::Churn, 0);
  REQUIRE(table.size() == 4);
  CHECK(table[0].find("ITER/S") != std::string::npos);
  CHECK(table[0].find("sorted by churn") != std::string::npos);
  bool flagged = false;
  for (const auto& line : table) flagged |= line.find("CHURN: 2500 reads/s of 1 B") != std::string::npos;
  CHECK(flagged);
  for (const auto& line : format_rows(rows, TopSort::Churn, 40)) CHECK(line.size() <= 40);
}

TEST_CASE("loop health: stalls per minute and processes that went away") {
  LoopRates rates;
  Summary s;
  s.processes[7] = totals(10, 0, 0, 0);
  rates.update(s, 0);
  s.processes[7].stalls = 3;
  auto rows = rates.update(s, 30);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].stalls_per_min == doctest::Approx(6));  // 3 in 30 s
  s.processes[7].stalls = 4;
  rows = rates.update(s, 90);  // the first three are over a minute old
  CHECK(rows[0].stalls_per_min == doctest::Approx(1));
  s.processes.clear();
  CHECK(rates.update(s, 91).empty());
  // A reused pid whose counters went back starts over instead of showing garbage.
  s.processes[7] = totals(5, 0, 0, 0);
  rows = rates.update(s, 92);
  CHECK(rows[0].iterations_per_s == 0);
}

TEST_CASE("loop health: sort names") {
  for (TopSort s :
       {TopSort::Utilisation, TopSort::Iterations, TopSort::P99, TopSort::Stalls, TopSort::Churn, TopSort::Pid})
    CHECK(parse_top_sort(to_string(s)) == s);
  CHECK_FALSE(parse_top_sort("cpu").has_value());
  CHECK(next_sort(TopSort::Pid) == TopSort::Utilisation);
}
