// Prometheus exposition and the daemon's series.
#include <doctest/doctest.h>

#include <string>

#include "loopstall/metrics.hpp"
#include "loopstall/stall_metrics.hpp"

using namespace loopstall;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

StallReport final_stall(double ms, Cause cause, const std::string& service, const std::string& comm) {
  StallReport r;
  r.pid = 10;
  r.tid = 10;
  r.comm = comm;
  r.service = service;
  r.duration_ms = ms;
  r.cause = cause;
  r.breakdown = {.on_cpu_ms = ms * 0.25, .blocked_ms = ms * 0.75, .runqueue_ms = 0, .gc_ms = 0};
  r.syscalls = {{202, "futex", ms * 0.75, 3}};
  return r;
}

}  // namespace

TEST_CASE("families render HELP, TYPE and escaped labels") {
  Registry reg;
  reg.counter("c_total", "a counter", {"k"}).add({"a\"b\\c\nd"}, 2);
  reg.gauge("g", "a gauge").set({}, 1.5);
  const std::string out = reg.render();
  CHECK(has_line(out, "# HELP c_total a counter"));
  CHECK(has_line(out, "# TYPE c_total counter"));
  CHECK(has_line(out, "c_total{k=\"a\\\"b\\\\c\\nd\"} 2"));
  CHECK(has_line(out, "# TYPE g gauge"));
  CHECK(has_line(out, "g 1.5"));
}

TEST_CASE("label values are valid UTF-8 whatever a comm holds") {
  // service may be a comm or a cmdline capture; one bad byte would make Prometheus reject the
  // whole scrape.
  Registry reg;
  reg.counter("c_total", "a counter", {"service"}).add({"x\xff\xfey"}, 1);
  CHECK(has_line(reg.render(), "c_total{service=\"x\xef\xbf\xbd\xef\xbf\xbdy\"} 1"));
}

TEST_CASE("histograms are cumulative with shortest bucket bounds") {
  Registry reg;
  auto& h = reg.histogram("h_seconds", "h", {"s"}, {0.0025, 0.1, 10});
  h.observe({"x"}, 0.001);
  h.observe({"x"}, 0.05);
  h.observe({"x"}, 20);
  const std::string out = reg.render();
  CHECK(has_line(out, "h_seconds_bucket{s=\"x\",le=\"0.0025\"} 1"));
  CHECK(has_line(out, "h_seconds_bucket{s=\"x\",le=\"0.1\"} 2"));
  CHECK(has_line(out, "h_seconds_bucket{s=\"x\",le=\"10\"} 2"));
  CHECK(has_line(out, "h_seconds_bucket{s=\"x\",le=\"+Inf\"} 3"));
  CHECK(has_line(out, "h_seconds_count{s=\"x\"} 3"));
  CHECK(has_line(out, "h_seconds_sum{s=\"x\"} 20.051"));
}

TEST_CASE("service labels stay bounded") {
  ServiceLabels labels(2);
  CHECK(labels("a") == "a");
  CHECK(labels("b") == "b");
  CHECK(labels("c") == "other");
  CHECK(labels("a") == "a");
}

TEST_CASE("final stalls feed the contract series; ongoing reports do not") {
  Registry reg;
  StallMetrics m(reg, 200, "9.9.9");
  StallReport ongoing = final_stall(150, Cause::BlockingSyscall, "api.service", "python3");
  ongoing.ongoing = true;
  m.stall(ongoing);
  m.stall(final_stall(400, Cause::BlockingSyscall, "api.service", "python3"));
  m.stall(final_stall(120, Cause::Cpu, "worker", "python3"));
  m.stall(final_stall(130, Cause::Cpu, "", "python3"));  // no rule named it: service="" (no comm fallback)
  IterationDelta d;
  d.count = 1000;
  d.hist[10] = 990;  // < 1.024 ms
  d.hist[17] = 10;   // < 131 ms
  m.iterations(10, "api.service", d);
  const std::string out = reg.render();
  CHECK(has_line(out, "loopstall_build_info{version=\"9.9.9\"} 1"));
  CHECK(has_line(out, "loopstall_stalls_total{cause=\"blocking_syscall\",service=\"api.service\"} 1"));
  CHECK(has_line(out, "loopstall_stalls_total{cause=\"cpu\",service=\"worker\"} 1"));
  CHECK(has_line(out, "loopstall_stalls_total{cause=\"cpu\",service=\"\"} 1"));
  CHECK(has_line(out, "loopstall_stall_duration_seconds_count{service=\"api.service\"} 1"));
  CHECK(has_line(out, "loopstall_stall_duration_seconds_bucket{service=\"api.service\",le=\"0.25\"} 0"));
  CHECK(has_line(out, "loopstall_stall_duration_seconds_bucket{service=\"api.service\",le=\"0.5\"} 1"));
  CHECK(has_line(out, "loopstall_loop_iterations_total{service=\"api.service\"} 1000"));
  CHECK(has_line(out, "loopstall_iteration_duration_seconds_bucket{service=\"api.service\",le=\"0.001024\"} 990"));
  CHECK(has_line(out, "loopstall_iteration_duration_seconds_bucket{service=\"api.service\",le=\"0.065536\"} 990"));
  CHECK(has_line(out, "loopstall_iteration_duration_seconds_bucket{service=\"api.service\",le=\"0.262144\"} 1000"));
  CHECK(has_line(out, "loopstall_blocked_seconds_total{syscall=\"futex\",service=\"api.service\"} 0.3"));
  CHECK(has_line(out, "loopstall_stall_time_seconds_total{component=\"blocked\",service=\"api.service\"} 0.3"));
  for (const char* family : {"loopstall_monitored_loops", "loopstall_lost_events_total", "loopstall_ongoing_stalls",
                             "loopstall_alerts_firing", "loopstall_probe_attach_failures_total"})
    CHECK(out.find(std::string("# TYPE ") + family + " ") != std::string::npos);
}
