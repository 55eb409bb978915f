// Text output: a line per stall and the end-of-capture summary.
#include <doctest/doctest.h>

#include <string>

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

TEST_CASE("format_stall_line: a final stall") {
  const std::string line = format_stall_line(report());
  CAPTURE(line);
  CHECK(has(line, "pid=4242"));
  CHECK(has(line, "tid=4243"));
  CHECK(has(line, "gunicorn"));
  CHECK(has(line, "[gevent 3.11]"));
  CHECK(has(line, "250.0 ms"));
  CHECK(has(line, "blocking_syscall"));
  CHECK(has(line, "blocked 225.1"));
  CHECK(has(line, "futex 200.0 ms x3"));
  CHECK(has(line, "service gunicorn.service"));
  CHECK(has(line, ".987 "));  // milliseconds of the start time
  CHECK(has(line, "STALL "));
  CHECK_FALSE(has(line, "STALLING"));
  // At most three syscalls, the top ones.
  CHECK(has(line, "poll 4.0 ms"));
  CHECK_FALSE(has(line, "clock_nanosleep"));
  CHECK(line.find("futex") < line.find("read"));
  CHECK(line.find('\n') == std::string::npos);
}

TEST_CASE("format_stall_line: ongoing, no Python version, a stack") {
  StallReport r = report();
  r.ongoing = true;
  r.loop = LoopKind::Epoll;
  r.python_version = std::nullopt;
  r.service = "";
  r.syscalls.clear();
  r.cause = Cause::Cpu;
  r.python_stacks = {{5, {{"Handler.handle", "/srv/app.py", 120}}}};
  const std::string line = format_stall_line(r);
  CAPTURE(line);
  CHECK(has(line, "STALLING"));
  CHECK(has(line, "[epoll]"));
  CHECK(has(line, " cpu:"));
  CHECK_FALSE(has(line, "service"));
  CHECK_FALSE(has(line, " | in"));
  CHECK(has(line, "at Handler.handle (/srv/app.py:120)"));

  r.python_stacks[0].frames[0].line = std::nullopt;
  CHECK(has(format_stall_line(r), "at Handler.handle (/srv/app.py)"));
}

TEST_CASE("format_stall_line: long strings do not overflow") {
  StallReport r = report();
  r.comm = std::string(10000, 'c');
  r.python_version = std::string(5000, '3');
  r.syscalls = {{1, std::string(3000, 's'), 1.0, 1}};
  r.python_stacks = {{1, {{std::string(3000, 'f'), std::string(3000, 'p'), 1}}}};
  const std::string line = format_stall_line(r);
  CHECK(has(line, "pid=4242"));
  CHECK(has(line, std::string(3000, 'f')));  // the stack part is not cut
}

TEST_CASE("format_stall_line and format_summary escape what the process chose") {
  // comm (prctl/PR_SET_NAME, /proc/self/comm), service, code names: any
  // user's. Raw, "\x1b]0;...\x07" would retitle the reader's terminal.
  StallReport r = report();
  r.comm = "\x1b]0;pwn\x07\x1b[2J";
  r.service = "svc\r\x1b[1A";
  r.python_stacks = {{1,
                      {{"f\x1b[31m",
                        "/srv/\x9b"
                        "app.py",
                        3}}}};
  const std::string line = format_stall_line(r);
  CAPTURE(line);
  CHECK(line.find('\x1b') == std::string::npos);
  CHECK(line.find('\r') == std::string::npos);
  CHECK(line.find('\x07') == std::string::npos);
  CHECK(has(line, "\\x1b]0;pwn\\x07\\x1b[2J"));
  CHECK(has(line, "service svc\\x0d\\x1b[1A"));
  CHECK(has(line, "at f\\x1b[31m (/srv/\\x9bapp.py:3)"));
  Summary s;
  s.processes[7] = {"\x1b[2Jx", LoopKind::Asyncio, 1, 1, 150.0, 150.0};
  const std::string sum = format_summary(s);
  CHECK(sum.find('\x1b') == std::string::npos);
  CHECK(has(sum, "\\x1b[2Jx"));
}

TEST_CASE("format_summary lists every process") {
  Summary s;
  s.elapsed_s = 12.5;
  s.lost_events = 5;
  s.processes[4242] = {"gunicorn", LoopKind::Gevent, 123456, 2, 300.0, 420.0};
  s.processes[77] = {"nginx", LoopKind::Epoll, 9, 1, 150.0, 150.0};
  const std::string out = format_summary(s);
  CAPTURE(out);
  CHECK(has(out, "12.5 s"));
  CHECK(has(out, "3 stall(s) in 2 process(es)"));
  CHECK(has(out, "5 event(s) lost"));
  CHECK(has(out, "PID"));
  CHECK(has(out, "4242"));
  CHECK(has(out, "gunicorn"));
  CHECK(has(out, "gevent"));
  CHECK(has(out, "123456"));
  CHECK(has(out, "300.0"));
  CHECK(has(out, "420.0"));
  CHECK(has(out, "nginx"));
  CHECK(has(out, "epoll"));
  // One line per process after the header, in pid order.
  CHECK(out.find("nginx") < out.find("gunicorn"));
  std::size_t lines = 0;
  for (char c : out) lines += c == '\n';
  CHECK(lines == 4);
}

TEST_CASE("format_summary without processes") {
  Summary s;
  s.elapsed_s = 1;
  const std::string out = format_summary(s);
  CHECK(has(out, "0 stall(s) in 0 process(es)"));
  CHECK_FALSE(has(out, "PID"));
}

TEST_CASE("TextSink writes a line per stall and the summary") {
  std::string out;
  std::size_t writes = 0;
  TextSink sink([&](std::string_view s) {
    out.append(s);
    ++writes;
  });
  sink.stall(report());
  StallReport r2 = report();
  r2.pid = 99;
  sink.stall(r2);
  Summary s;
  s.processes[4242] = {"gunicorn", LoopKind::Gevent, 1, 1, 1, 1};
  sink.finish(s);
  CHECK(writes == 3);  // whole lines, the summary in one piece
  CHECK(out.find(format_stall_line(report()) + "\n") == 0);
  CHECK(has(out, format_stall_line(r2) + "\n"));
  CHECK(has(out, format_summary(s)));
  CHECK(out.size() == format_stall_line(report()).size() + format_stall_line(r2).size() + 2 + format_summary(s).size());
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
