// Text output: a line per stall and the end-of-capture summary.
#include <doctest/doctest.h>

#include <algorithm>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "loopstall/text_sink.hpp"

using namespace loopstall;

namespace {

StallReport report() {
  StallReport r;
  r.stall_id = "4243-abc";
  r.pid = 4242;
  r.tid = 4243;
  r.comm = "gunicorn";
  r.exe = "/usr/bin/python3.11";
  r.service = "gunicorn.service";
  r.loop = LoopKind::Gevent;
  r.python_version = "3.11";
  r.start_unix_ns = 1'700'000'000'987'654'321LL;
  r.duration_ms = 250.04;
  r.threshold_ms = 100;
  r.cause = Cause::BlockingSyscall;
  r.breakdown = {24.96, 225.08, 0, 3.5};
  r.syscalls = {{202, "futex", 200.0, 3}, {0, "read", 20.0, 1}, {7, "poll", 4.0, 1}, {230, "clock_nanosleep", 1.0, 1}};
  return r;
}

bool has(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("format_stall_line: a final stall, its cause without repetition") {
  const std::string line = format_stall_line(report());
  CAPTURE(line);
  CHECK(line.rfind(".987 ") == 8);  // HH:MM:SS.mmm of the start
  CHECK(has(line, " 4242 "));
  CHECK(has(line, " 4243 "));
  CHECK(has(line, "gunicorn"));
  CHECK(has(line, "gevent"));
  CHECK(has(line, "250.0"));
  // The dominant part and what it was in; cpu (21.5 ms) is under a tenth of the stall.
  CHECK(has(line, "blocked 225 ms in futex"));
  CHECK_FALSE(has(line, "cpu"));
  CHECK_FALSE(has(line, "ONGOING"));
  CHECK_FALSE(has(line, "STALL"));
  CHECK(line.find('\n') == std::string::npos);
  // The header names the same columns.
  const std::string head = stall_header();
  CHECK(head.rfind("TIME", 0) == 0);
  CHECK(head.find("PID") < head.find("CAUSE"));
  CHECK(head.find("CAUSE") < head.find("CULPRIT"));
}

TEST_CASE("format_stall_line: each part of a mixed stall, the dominant first") {
  StallReport r = report();
  r.cause = Cause::Cpu;
  r.duration_ms = 550;
  r.breakdown = {300.0, 191.0, 60.0, 12.0};
  r.syscalls = {{0, "read", 191.0, 4}};
  const std::string line = format_stall_line(r);
  CAPTURE(line);
  CHECK(has(line, "cpu 288 ms, blocked 191 ms in read, runq 60.0 ms "));
  CHECK_FALSE(has(line, "gc "));  // 12 ms: under a tenth
  r.cause = Cause::Gc;
  r.breakdown = {60.0, 0, 0, 55.5};
  CHECK(has(format_stall_line(r), "gc 55.5 ms "));
}

TEST_CASE("format_stall_line: ongoing, the culprit's frame py-spy style") {
  StallReport r = report();
  r.ongoing = true;
  r.syscalls.clear();
  r.cause = Cause::Cpu;
  r.breakdown = {250, 0, 0, 0};
  r.python_stacks = {{5, {{"Handler.handle", "/srv/app.py", 120}}}};
  const std::string line = format_stall_line(r);
  CAPTURE(line);
  CHECK(has(line, "ONGOING cpu 250 ms"));
  CHECK(has(line, "Handler.handle (app.py:120)"));
  r.python_stacks[0].frames[0].line = std::nullopt;
  CHECK(has(format_stall_line(r), "Handler.handle (app.py)"));
}

TEST_CASE("format_stall on a narrow terminal: the culprit still shows in 80 columns") {
  StallReport r = report();
  r.ongoing = true;
  r.duration_ms = 5118.4;
  r.breakdown = {0, 5118.4, 0, 0};
  r.syscalls = {{230, "clock_nanosleep", 5118.4, 1}};
  r.python_stacks = {{5, {{"blocking_sleep", "/srv/gevent_stall.py", 42}, {"handle", "/srv/app.py", 7}}}};
  const std::string head = stall_header(80);
  const std::string line = format_stall_line(r, 79);
  CAPTURE(head);
  CAPTURE(line);
  CHECK(head.rfind("TIME", 0) == 0);
  for (const char* gone : {"TID", "COMM", "LOOP"}) CHECK_FALSE(has(head, gone));
  CHECK(has(line, " 4242    5118.4 ONGOING blocked in clock_nanosleep blocking_sleep (gevent_stall.py:42)"));
  CHECK(line.find("blocking_sleep") + std::string("blocking_sleep").size() <= 79);
  for (const char* gone : {"4243", "gunicorn", "gevent "}) CHECK_FALSE(has(line, gone));
  // The columns of the header are the line's.
  CHECK(head.find("PID") + 3 == line.find("4242") + 4);
  CHECK(head.find("STALL_MS") + 8 == line.find("5118.4") + 6);
  // The final lines: a culprit that does not fit beside the cause starts the next line instead
  // of being cut in two by the terminal; the status line (one line) keeps it there, cut.
  r.ongoing = false;
  const std::string lines = format_stall(r, 79);
  CAPTURE(lines);
  CHECK(lines.rfind(format_stall_line(r, 79).substr(0, 20), 0) == 0);
  CHECK(has(lines, " 4242    5118.4 blocked in clock_nanosleep\n    blocking_sleep (gevent_stall.py:42) < handle"));
  for (std::size_t at = 0, nl; (nl = lines.find('\n', at)) != std::string::npos; at = nl + 1) CHECK(nl - at <= 79);
  r.ongoing = true;
  // A mixed cause keeps every part's time.
  r.breakdown = {1000, 4118.4, 0, 0};
  CHECK(has(format_stall_line(r, 79), "ONGOING blocked 4118 ms in clock_nanosleep, cpu 1000 ms blocking_sleep"));
  // From kCompactBelow columns on: the full layout.
  CHECK(has(stall_header(kCompactBelow), "TID"));
  CHECK(has(format_stall_line(r, kCompactBelow), " 4243 gunicorn "));
}

TEST_CASE("format_stall: the top three frames, wrapped on indented lines") {
  StallReport r = report();
  r.python_stacks = {{5,
                      {{"read_body", "/srv/a.py", 1},
                       {"parse", "/srv/b.py", 2},
                       {"handle", "/srv/c.py", 3},
                       {"run", "/srv/d.py", 4}}}};
  const std::string wide = format_stall(r, 200);
  CAPTURE(wide);
  CHECK(has(wide, "read_body (a.py:1) < parse (b.py:2) < handle (c.py:3) < ...\n"));
  CHECK_FALSE(has(wide, "run ("));
  CHECK(std::count(wide.begin(), wide.end(), '\n') == 1);
  const std::string narrow = format_stall(r, 100);
  CAPTURE(narrow);
  CHECK(has(narrow, "read_body (a.py:1)\n    < parse (b.py:2) < handle (c.py:3) < ...\n"));
  std::size_t start = 0;
  for (std::size_t nl; (nl = narrow.find('\n', start)) != std::string::npos; start = nl + 1)
    if (start) CHECK(nl - start <= 100);  // continuation lines keep to the width
}

TEST_CASE("format_stall: a stall that mixed two functions shows both") {
  StallReport r = report();
  r.duration_ms = 550;
  r.python_stacks = {{191, {{"load_config", "/srv/cfg.py", 10}, {"handle", "/srv/app.py", 5}}},
                     {300, {{"render", "/srv/view.py", 20}, {"handle", "/srv/app.py", 6}}},
                     {9, {{"tiny", "/srv/t.py", 1}}}};
  const std::string out = format_stall(r);
  CAPTURE(out);
  const std::string first = out.substr(0, out.find('\n'));
  CHECK(has(first, " render (view.py:20)"));  // the caller wraps at 120 columns
  CHECK(has(out, "\n    < handle (app.py:6)\n"));
  CHECK(format_stall_line(r, 200).find("render (view.py:20) < handle (app.py:6)") != std::string::npos);
  CHECK(has(out, "\n    + 210 ms in load_config (cfg.py:10) < handle (app.py:5)\n"));
  CHECK_FALSE(has(out, "tiny"));  // 2 %: not worth a line
}

TEST_CASE("format_stall: the C code the loop was in") {
  StallReport r = report();
  r.python_stacks = {{5, {{"ctypes_usleep", "/srv/app.py", 7}}}};
  r.native_stack = {{"clock_nanosleep", "/usr/lib/x86_64-linux-gnu/libc.so.6", 1},
                    {"usleep", "/usr/lib/x86_64-linux-gnu/libc.so.6", 2},
                    {"", "/usr/bin/python3.11", 0x1234}};
  const std::string out = format_stall(r);
  CAPTURE(out);
  CHECK(has(out, "ctypes_usleep (app.py:7)\n    in C: clock_nanosleep (libc.so.6) < usleep (libc.so.6)\n"));
  CHECK_FALSE(has(out, "python3.11"));
  // In the interpreter itself: no C line.
  r.native_stack = {{"", "/usr/bin/python3.11", 0x1234}};
  CHECK_FALSE(has(format_stall(r), "in C:"));
  // No Python stack: the C function is the culprit, else the syscall.
  r.python_stacks.clear();
  r.native_stack = {{"epoll_wait", "/lib/libc.so.6", 1}};
  CHECK(has(format_stall_line(r), "epoll_wait (libc.so.6)"));
  r.native_stack.clear();
  CHECK(has(format_stall_line(r), "[blocked in futex]"));
}

TEST_CASE("culprit_shares: a stall's time by innermost frame, most first") {
  StallReport r = report();
  r.duration_ms = 400;
  r.python_stacks = {{1, {{"a", "/x/m.py", 1}}},
                     {2, {{"b", "/x/m.py", 2}, {"c", "/x/m.py", 3}}},
                     {1, {{"a", "/x/m.py", 1}, {"d", "/x/m.py", 4}}}};
  const auto s = culprit_shares(r);
  REQUIRE(s.size() == 2);
  CHECK(s[0].ms == doctest::Approx(200));
  CHECK(s[1].ms == doctest::Approx(200));
  CHECK((s[0].name == "b (m.py)" || s[0].name == "a (m.py)"));
  r.python_stacks[1].samples = 1;
  const auto t = culprit_shares(r);
  CHECK(t[0].name == "a (m.py)");
  CHECK(t[0].ms == doctest::Approx(800.0 / 3));
  CHECK(t[0].stack == &r.python_stacks[0]);
  // Lines of one function are one culprit; its heaviest stack is the one shown.
  r.python_stacks[2].samples = 3;
  r.python_stacks[2].frames[0].line = 9;
  const auto u = culprit_shares(r);
  REQUIRE(u.size() == 2);
  CHECK(u[0].name == "a (m.py)");
  CHECK(u[0].ms == doctest::Approx(320));
  CHECK(u[0].stack == &r.python_stacks[2]);
  r.python_stacks.clear();
  r.cause = Cause::Runqueue;
  CHECK(culprit_shares(r).at(0).name == "[runqueue]");
}

TEST_CASE("ProcessTotals: stalled time by culprit, bounded") {
  ProcessTotals t;
  CHECK(t.top_culprit().empty());
  StallReport r = report();
  for (int i = 0; i < 100; ++i) {
    r.python_stacks = {{1, {{"f" + std::to_string(i), "/x/m.py", 1}}}};
    r.duration_ms = i == 7 ? 900 : 100;
    t.add_culprits(r);
  }
  // A process that names a new function for every stall cannot grow the daemon's totals for ever.
  CHECK(t.culprit_ms.size() == ProcessTotals::kMaxCulprits + 1);
  CHECK(t.culprit_ms.at("[other]") == doctest::Approx(100.0 * (100 - ProcessTotals::kMaxCulprits)));
  CHECK(t.top_culprit() == "[other]");
  r.python_stacks = {{1, {{"f7", "/x/m.py", 2}}}};
  r.duration_ms = 3000;
  t.add_culprits(r);  // a known name still adds up
  CHECK(t.top_culprit() == "f7 (m.py)");
  CHECK(t.culprit_ms.at("f7 (m.py)") == doctest::Approx(3900));
}

TEST_CASE("format_stall: long strings do not overflow") {
  StallReport r = report();
  r.comm = std::string(10000, 'c');
  r.syscalls = {{1, std::string(3000, 's'), 1.0, 1}};
  r.python_stacks = {{1, {{std::string(3000, 'f'), std::string(3000, 'p'), 1}}}};
  const std::string out = format_stall(r);
  CHECK(has(out, " 4242 "));
  CHECK(has(out, std::string(3000, 'f')));  // the stack part is not cut
}

TEST_CASE("format_stall and format_summary escape what the process chose") {
  // comm (prctl/PR_SET_NAME, /proc/self/comm), service, code names: any
  // user's. Raw, "\x1b]0;...\x07" would retitle the reader's terminal.
  StallReport r = report();
  r.comm = "\x1b]0;pwn\x07\x1b[2J";
  r.service = "svc\r\x1b[1A";
  r.syscalls = {{0, "rd\x1b[1m", 200, 1}};
  r.python_stacks = {{1,
                      {{"f\x1b[31m",
                        "/srv/\x9b"
                        "app.py",
                        3}}}};
  r.native_stack = {{"sym\x07", "/lib/\x1bx.so", 1}};
  const std::string out = format_stall(r);
  CAPTURE(out);
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find('\x07') == std::string::npos);
  CHECK(has(out, "\\x1b]0;pwn\\x07\\x1b[2J"));
  CHECK(has(out, "in rd\\x1b[1m"));
  CHECK(has(out, "f\\x1b[31m (\\x9bapp.py:3)"));
  CHECK(has(out, "sym\\x07 (\\x1bx.so)"));
  Summary s;
  s.processes[7] = {"\x1b[2Jx", LoopKind::Asyncio, 1, 1, 150.0, 150.0};
  s.processes[7].service = "svc\r\x1b[1A";
  s.processes[7].culprit_ms["f\x1b[31m (x.py:1)"] = 150;
  const std::string sum = format_summary(s);
  CAPTURE(sum);
  CHECK(sum.find('\x1b') == std::string::npos);
  CHECK(sum.find('\r') == std::string::npos);
  CHECK(has(sum, "\\x1b[2Jx"));
  CHECK(has(sum, "svc\\x0d\\x1b[1A"));
  CHECK(has(sum, "f\\x1b[31m (x.py:1)"));
}

TEST_CASE("format_summary lists every process with its service and top culprit") {
  Summary s;
  s.elapsed_s = 12.5;
  s.lost_events = 5;
  s.processes[4242] = {"gunicorn", LoopKind::Gevent, 123456, 2, 300.0, 420.0};
  s.processes[4242].service = "gunicorn.service";
  s.processes[4242].culprit_ms = {{"render (view.py:20)", 120.0}, {"load_config (cfg.py:10)", 300.0}};
  s.processes[77] = {"nginx", LoopKind::Epoll, 9, 1, 150.0, 150.0};
  const std::string out = format_summary(s);
  CAPTURE(out);
  CHECK(has(out, "12.5 s"));
  CHECK(has(out, "3 stall(s) in 2 process(es)"));
  CHECK(has(out, "5 event(s) lost"));
  // Rows read by the header's names (tests/integration do so too).
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    rows.emplace_back(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>());
  }
  REQUIRE(rows.size() == 4);
  const auto& head = rows[1];
  auto col = [&](const std::vector<std::string>& row, const std::string& name) {
    const auto i = static_cast<std::size_t>(std::find(head.begin(), head.end(), name) - head.begin());
    REQUIRE(i < head.size());
    return row.at(i);
  };
  // In pid order; CULPRIT last, free text.
  CHECK(col(rows[2], "PID") == "77");
  CHECK(col(rows[2], "COMM") == "nginx");
  CHECK(col(rows[2], "LOOP") == "epoll");
  CHECK(col(rows[2], "SERVICE") == "-");
  CHECK(col(rows[2], "CULPRIT") == "-");
  CHECK(col(rows[3], "PID") == "4242");
  CHECK(col(rows[3], "ITERATIONS") == "123456");
  CHECK(col(rows[3], "STALLS") == "2");
  CHECK(col(rows[3], "MAX_MS") == "300.0");
  CHECK(col(rows[3], "STALLED_MS") == "420.0");
  CHECK(col(rows[3], "SERVICE") == "gunicorn.service");
  CHECK(head.back() == "CULPRIT");
  CHECK(out.substr(out.rfind("gunicorn.service")).find("load_config (cfg.py:10)\n") != std::string::npos);
}

TEST_CASE("format_summary without processes") {
  Summary s;
  s.elapsed_s = 1;
  const std::string out = format_summary(s);
  CHECK(has(out, "0 stall(s) in 0 process(es)"));
  CHECK_FALSE(has(out, "PID"));
}

namespace {

struct Recorded {
  std::vector<std::string> records;
  Writer writer() {
    return [this](std::string_view s) { records.emplace_back(s); };
  }
  std::string all() const {
    std::string out;
    for (const auto& r : records) out += r;
    return out;
  }
};

StallReport ongoing(double ms) {
  StallReport r = report();
  r.ongoing = true;
  r.duration_ms = ms;
  return r;
}

// An ongoing stall blocked in one syscall all along (a hang).
StallReport hung(double ms) {
  StallReport r = ongoing(ms);
  r.breakdown = {0, ms, 0, 0};
  r.syscalls = {{230, "clock_nanosleep", ms, 1}};
  return r;
}

}  // namespace

TEST_CASE("TextSink off a terminal: one line per finished stall, a hung loop's line from 1 s on") {
  Recorded rec;
  TextSink sink(rec.writer());
  sink.stall(ongoing(150));  // a stall crossing the threshold: not worth a line yet
  CHECK(rec.records.empty());
  sink.stall(report());  // its end
  StallReport r2 = report();
  r2.stall_id = "99-x";
  r2.pid = 99;
  sink.stall(ongoing(5100));  // a fresh id would be another stall; this one is the first again
  sink.stall(r2);
  Summary s;
  s.processes[4242] = {"gunicorn", LoopKind::Gevent, 1, 1, 1, 1};
  sink.finish(s);
  const std::string out = rec.all();
  CAPTURE(out);
  CHECK(out.rfind(stall_header() + "\n" + format_stall(report()), 0) == 0);  // the header once, first
  CHECK(has(out, format_stall(ongoing(5100))));
  CHECK(has(out, "ONGOING"));
  CHECK(has(out, format_stall(r2)));
  CHECK(out.find(format_stall(r2)) + format_stall(r2).size() == out.find(format_summary(s)));
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find('\r') == std::string::npos);
  // A stall still going on at the end is printed before the summary, however young.
  Recorded rec2;
  TextSink hung(rec2.writer());
  hung.stall(ongoing(300));
  hung.finish(s);
  CHECK(rec2.all() == stall_header() + "\n" + format_stall(ongoing(300)) + format_summary(s));
}

TEST_CASE("TextSink --ongoing: every ongoing report as a line") {
  Recorded rec;
  TextSink sink(rec.writer(), {0, true});
  sink.stall(ongoing(150));
  sink.stall(ongoing(5150));
  sink.stall(report());
  const std::string out = rec.all();
  CHECK(out ==
        stall_header() + "\n" + format_stall(ongoing(150)) + format_stall(ongoing(5150)) + format_stall(report()));
}

TEST_CASE("TextSink on a terminal: the ongoing stall is one status line updated in place") {
  Recorded rec;
  TextSink sink(rec.writer(), {100, false});
  sink.stall(ongoing(150));
  sink.stall(ongoing(5150));
  REQUIRE(rec.records.size() == 3);  // header, status, status
  CHECK(rec.records[0] == stall_header() + "\n");
  for (std::size_t i = 1; i < 3; ++i) {
    const std::string& st = rec.records[i];
    CAPTURE(st);
    CHECK(st.rfind("\x1b[K", 0) == 0);  // drawn from column 0, erasing the last one
    CHECK(st.back() == '\r');           // and leaves the cursor there
    CHECK(st.find('\n') == std::string::npos);
    CHECK(st.size() - 4 <= 99);  // never wraps
    CHECK(has(st, "ONGOING"));
  }
  CHECK(has(rec.records[2], "5150.0"));
  // The final line replaces it.
  sink.stall(report());
  CHECK(rec.records.back() == "\x1b[K" + format_stall(report(), 100));
  // Another loop still hung: its status line comes back under the final line.
  StallReport other = ongoing(2000);
  other.stall_id = "5-y";
  sink.stall(other);
  StallReport done = report();
  done.stall_id = "1-z";
  sink.stall(done);
  CHECK(rec.records.back().back() == '\r');
  CHECK(has(rec.records.back(), "2000.0"));
  // The end: the hung loop's line stays, then the summary.
  Summary s;
  sink.finish(s);
  CHECK(rec.records.back() == format_summary(s));
  CHECK(rec.records[rec.records.size() - 2] == "\x1b[K" + format_stall(other, 100));
}

TEST_CASE("TextSink on a terminal: a hang's status line counts up between the correlator's reports") {
  Recorded rec;
  TextSink sink(rec.writer(), {120, false});
  const std::uint64_t t0 = 1'000'000'000'000ULL;
  constexpr std::uint64_t kMs = 1'000'000;
  sink.tick(t0 - 100 * kMs);
  sink.stall(hung(150));  // made by the scan at t0
  sink.tick(t0);
  const std::size_t drawn = rec.records.size();
  sink.tick(t0 + 500 * kMs);  // not yet: once a second
  CHECK(rec.records.size() == drawn);
  sink.tick(t0 + 1200 * kMs);
  REQUIRE(rec.records.size() == drawn + 1);
  CHECK(has(rec.records.back(), "1350.0 ONGOING blocked 1350 ms in clock_nanosleep"));
  CHECK(rec.records.back().back() == '\r');
  sink.tick(t0 + 2300 * kMs);
  CHECK(has(rec.records.back(), "2450.0 ONGOING blocked 2450 ms"));
  // The correlator's next report resets the base: its numbers, then time since it.
  sink.stall(hung(5150));
  sink.tick(t0 + 5000 * kMs);
  CHECK(has(rec.records.back(), "5150.0"));
  sink.tick(t0 + 6000 * kMs);
  CHECK(has(rec.records.back(), "6150.0 ONGOING blocked 6150 ms"));
  // No report for 11 s (its process is gone, the final never comes): the status line goes.
  sink.tick(t0 + 16'500 * kMs);
  CHECK(rec.records.back() == "\x1b[K");
  const std::size_t gone = rec.records.size();
  sink.tick(t0 + 18'000 * kMs);
  CHECK(rec.records.size() == gone);

  // A stall that mixed states is shown as last measured until its next report.
  Recorded mixed_rec;
  TextSink mixed(mixed_rec.writer(), {120, false});
  StallReport m = ongoing(400);
  m.breakdown = {200, 200, 0, 0};
  mixed.stall(m);
  mixed.tick(t0);
  mixed.tick(t0 + 1500 * kMs);
  CHECK(has(mixed_rec.records.back(), "400.0 ONGOING"));

  // Off a terminal nothing is redrawn.
  Recorded plain;
  TextSink off(plain.writer());
  off.stall(hung(150));
  off.tick(t0);
  off.tick(t0 + 3000 * kMs);
  CHECK(plain.records.empty());
}

TEST_CASE("TextSink forgets a stall whose final report never comes (its process was killed mid-stall)") {
  // A local user's process that dies inside a stall leaves no final report:
  // the correlator forgets the stall after 2 s, and so must the text output,
  // or a long capture holds every such report and prints them at its end as
  // "still going on", long after their processes are gone.
  const std::uint64_t t0 = 1'000'000'000'000ULL;
  constexpr std::uint64_t kMs = 1'000'000;
  for (int cols : {0, 120}) {
    CAPTURE(cols);
    Recorded rec;
    TextSink sink(rec.writer(), {cols, false});
    sink.tick(t0 - 100 * kMs);
    StallReport dead = ongoing(700);
    dead.stall_id = "66-dead";
    dead.pid = dead.tid = 66;
    dead.comm = "killedmidstall";
    sink.stall(dead);
    // Another loop hangs all along; the correlator reports it every 5 s.
    for (std::uint64_t ms = 0; ms <= 30'000; ms += 1000) {
      if (ms % 5000 == 0) sink.stall(hung(150 + static_cast<double>(ms)));
      sink.tick(t0 + ms * kMs);
    }
    if (cols) CHECK(!has(rec.records.back(), "killedmidstall"));  // the status line shows the live hang
    const std::size_t before_end = rec.records.size();
    sink.finish(Summary{});
    std::string end;
    for (std::size_t i = before_end; i < rec.records.size(); ++i) end += rec.records[i];
    CAPTURE(end);
    CHECK(has(rec.all(), "30150.0 ONGOING"));  // still going on: a line (at the end on a terminal)
    CHECK(!has(end, "killedmidstall"));        // gone 30 s ago: not
  }
}

TEST_CASE("iteration-duration quantiles come from the log2 histogram's bucket bounds") {
  loopstall::IterationHist h{};
  CHECK(loopstall::hist_quantile_ms(h, 0.5) == 0);
  h[10] = 98;  // [512 us, 1.024 ms)
  h[17] = 2;   // [65.5 ms, 131 ms)
  CHECK(loopstall::hist_quantile_ms(h, 0.5) == doctest::Approx(1.024));
  CHECK(loopstall::hist_quantile_ms(h, 0.98) == doctest::Approx(1.024));
  CHECK(loopstall::hist_quantile_ms(h, 0.99) == doctest::Approx(131.072));
}

TEST_CASE("format_stall: a coalesced summary says how many stalls it stands for") {
  StallReport r = report();
  const std::string plain = format_stall(r, kTextWidth);
  CHECK_FALSE(has(plain, "stalls like this"));
  r.coalesced = Coalesced{37, 5555.5, 251.25, 1'700'000'000'000'000'000LL, 1'700'000'009'800'000'000LL, 10};
  const std::string lines = format_stall(r, kTextWidth);
  CAPTURE(lines);
  CHECK(has(lines, "= 37 stalls like this in 10 s: 5556 ms in all, longest 251 ms\n"));
  // The stall line itself is unchanged: the summary is a line below it.
  CHECK(lines.rfind(plain.substr(0, plain.find('\n')), 0) == 0);
}
