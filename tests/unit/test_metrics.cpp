// The daemon's Prometheus series, fed like the daemon feeds them (stall
// reports, iteration counts, health snapshots), read back from the text
// exposition the way a scraper reads it.
#include <doctest/doctest.h>

#include <map>
#include <sstream>
#include <string>

#include "loopstall/alerts.hpp"
#include "loopstall/metrics.hpp"
#include "loopstall/stall_metrics.hpp"

using namespace loopstall;

namespace {

// One scrape, parsed: samples by "name{label="value",...}" with labels
// sorted by name (whatever order the text has them in), TYPE and HELP by
// family.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types, helps;

  explicit Scrape(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      REQUIRE_MESSAGE(!line.empty(), "empty line in the exposition");
      if (line.rfind("# TYPE ", 0) == 0 || line.rfind("# HELP ", 0) == 0) {
        const auto sp = line.find(' ', 7);
        REQUIRE(sp != std::string::npos);
        (line[2] == 'T' ? types : helps)[line.substr(7, sp - 7)] = line.substr(sp + 1);
        continue;
      }
      REQUIRE_MESSAGE(line[0] != '#', line);
      std::string name = line.substr(0, line.find_first_of("{ "));
      std::map<std::string, std::string> labels;
      std::size_t i = name.size();
      if (line[i] == '{') {
        ++i;
        while (line[i] != '}') {
          const auto eq = line.find("=\"", i);
          REQUIRE(eq != std::string::npos);
          const std::string key = line.substr(i, eq - i);
          std::string val;
          for (i = eq + 2; line[i] != '"'; ++i) {
            if (line[i] == '\\') {
              ++i;
              val += line[i] == 'n' ? '\n' : line[i];
            } else {
              val += line[i];
            }
          }
          labels[key] = val;
          ++i;
          if (line[i] == ',') ++i;
        }
        ++i;
      }
      REQUIRE(line[i] == ' ');
      std::string key = name;
      if (!labels.empty()) {
        key += '{';
        for (const auto& [k, v] : labels) key += k + "=\"" + v + "\",";
        key.back() = '}';
      }
      REQUIRE_MESSAGE(!samples.count(key), "sample twice: " << key);
      samples[key] = std::stod(line.substr(i + 1));
    }
  }
  bool has(const std::string& key) const { return samples.count(key) > 0; }
  double at(const std::string& key) const {
    auto it = samples.find(key);
    INFO("sample " << key);
    REQUIRE(it != samples.end());
    return it->second;
  }
};

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

Health snapshot(std::uint64_t now_ns) {
  Health h;
  h.now_ns = now_ns;
  h.counters_read_ns = now_ns;
  h.loops_by_kind[static_cast<std::size_t>(LoopKind::Gevent)] = 3;
  h.loops_by_kind[static_cast<std::size_t>(LoopKind::Asyncio)] = 1;
  h.monitored_loops = 4;
  h.watched_processes = 2;
  h.ongoing_stalls = 1;
  h.longest_ongoing_ns = 1'500'000'000;
  h.lost_events = 7;
  h.samples_over_budget = 2;
  h.bpf = {
      .iterations = 1000, .samples = 40, .samples_skipped = 5, .state_repairs = 1, .loops_full = 0, .procs_full = 3};
  h.map_entries = {.loops = 4, .procs = 9, .py_threads = 4};
  h.attach_failures = {"epoll_pwait2"};
  h.self = {.cpu_s = 1.5, .rss_bytes = 20e6, .start_time_s = 1.7e9, .open_fds = 12};
  return h;
}

}  // namespace

TEST_CASE("final stalls feed the contract series; ongoing reports do not") {
  Metrics reg;
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
  const Scrape s(reg.render());
  CHECK(s.at("loopstall_build_info{version=\"9.9.9\"}") == 1);
  CHECK(s.at("loopstall_stalls_total{cause=\"blocking_syscall\",service=\"api.service\"}") == 1);
  CHECK(s.at("loopstall_stalls_total{cause=\"cpu\",service=\"worker\"}") == 1);
  CHECK(s.at("loopstall_stalls_total{cause=\"cpu\",service=\"\"}") == 1);
  CHECK(s.types.at("loopstall_stalls_total") == "counter");
  CHECK(s.types.at("loopstall_stall_duration_seconds") == "histogram");
  CHECK(s.at("loopstall_stall_duration_seconds_count{service=\"api.service\"}") == 1);
  CHECK(s.at("loopstall_stall_duration_seconds_sum{service=\"api.service\"}") == doctest::Approx(0.4));
  CHECK(s.at("loopstall_stall_duration_seconds_bucket{le=\"0.25\",service=\"api.service\"}") == 0);
  CHECK(s.at("loopstall_stall_duration_seconds_bucket{le=\"0.5\",service=\"api.service\"}") == 1);
  CHECK(s.at("loopstall_stall_duration_seconds_bucket{le=\"+Inf\",service=\"api.service\"}") == 1);
  CHECK(s.at("loopstall_loop_iterations_total{service=\"api.service\"}") == 1000);
  CHECK(s.at("loopstall_iteration_duration_seconds_bucket{le=\"0.001024\",service=\"api.service\"}") == 990);
  CHECK(s.at("loopstall_iteration_duration_seconds_bucket{le=\"0.065536\",service=\"api.service\"}") == 990);
  CHECK(s.at("loopstall_iteration_duration_seconds_bucket{le=\"0.262144\",service=\"api.service\"}") == 1000);
  CHECK(s.at("loopstall_iteration_duration_seconds_count{service=\"api.service\"}") == 1000);
  // _sum: each iteration counted at its log2 bucket's upper bound.
  CHECK(s.at("loopstall_iteration_duration_seconds_sum{service=\"api.service\"}") ==
        doctest::Approx(990 * 1.024e-3 + 10 * 0.131072));
  CHECK(s.at("loopstall_blocked_seconds_total{service=\"api.service\",syscall=\"futex\"}") == doctest::Approx(0.3));
  CHECK(s.at("loopstall_stall_time_seconds_total{component=\"blocked\",service=\"api.service\"}") ==
        doctest::Approx(0.3));
  CHECK(s.at("loopstall_stall_time_seconds_total{component=\"on_cpu\",service=\"api.service\"}") ==
        doctest::Approx(0.1));
}

TEST_CASE("histogram bounds read the way PromQL users write them") {
  Metrics reg;
  StallMetrics m(reg, 200, "1");
  m.stall(final_stall(400, Cause::Cpu, "s", "c"));
  IterationDelta d;
  d.count = 1;
  d.hist[0] = 1;
  m.iterations(1, "s", d);
  const Scrape s(reg.render());
  for (const char* le : {"0.001", "0.0025", "0.1", "1", "30", "+Inf"})
    CHECK(s.has(std::string("loopstall_stall_duration_seconds_bucket{le=\"") + le + "\",service=\"s\"}"));
  for (const char* le : {"1e-06", "4e-06", "1.6e-05", "0.000256", "0.001024", "67.108864"})
    CHECK(s.has(std::string("loopstall_iteration_duration_seconds_bucket{le=\"") + le + "\",service=\"s\"}"));
}

TEST_CASE("every family has HELP and TYPE before anything is measured") {
  // Dashboards and rules name these families; a scrape right after start
  // (or with no alert rules, no failing probes) still declares them.
  Metrics reg;
  StallMetrics m(reg, 200, "1");
  const Scrape s(reg.render());
  for (const char* family :
       {"loopstall_monitored_loops", "loopstall_lost_events_total", "loopstall_ongoing_stalls",
        "loopstall_alerts_firing", "loopstall_probe_attach_failures_total", "loopstall_bpf_program_runs_total",
        "loopstall_alert_deliveries_total", "loopstall_output_dropped_total", "process_resident_memory_bytes"}) {
    CHECK(s.types.count(family) == 1);
    CHECK(!s.helps.at(family).empty());
  }
  CHECK(s.types.at("loopstall_lost_events_total") == "counter");
  CHECK(s.types.at("loopstall_loops") == "gauge");
  // prometheus-cpp 1.0.1 writes HELP as given: a backslash or a newline in
  // one would break the scrape (the parser above refuses a split line).
  for (const auto& [family, help] : s.helps) CHECK_MESSAGE(help.find('\\') == std::string::npos, family);
  CHECK(s.helps.size() == s.types.size());
  // Gauges of a snapshot not taken yet are absent, not zeros.
  CHECK(!s.has("loopstall_monitored_loops"));
  CHECK(!s.has("process_start_time_seconds"));
}

TEST_CASE("loop threads by service: the denominator of a service's average utilisation") {
  Metrics reg;
  StallMetrics m(reg, 2, "1");  // two service labels, then "other"
  Health h = snapshot(1'000'000'000);
  h.loops_by_service = {{"api.service", 4}, {"gunicorn.service", 2}, {"late.service", 1}, {"later.service", 3}};
  m.health(h);
  Scrape s(reg.render());
  CHECK(s.at("loopstall_service_loops{service=\"api.service\"}") == 4);
  CHECK(s.at("loopstall_service_loops{service=\"gunicorn.service\"}") == 2);
  CHECK(s.at("loopstall_service_loops{service=\"other\"}") == 4);  // over the label limit: added up
  // A service whose loops are gone reads 0; a snapshot between counter reads changes nothing.
  h.now_ns += 1'000'000'000;
  h.counters_read_ns = h.now_ns;
  h.loops_by_service = {{"gunicorn.service", 3}};
  m.health(h);
  s = Scrape(reg.render());
  CHECK(s.at("loopstall_service_loops{service=\"api.service\"}") == 0);
  CHECK(s.at("loopstall_service_loops{service=\"gunicorn.service\"}") == 3);
  CHECK(s.at("loopstall_service_loops{service=\"other\"}") == 0);
  h.now_ns += 100'000'000;
  h.loops_by_service = {};
  m.health(h);
  CHECK(Scrape(reg.render()).at("loopstall_service_loops{service=\"gunicorn.service\"}") == 3);
}

TEST_CASE("a health snapshot sets the gauges and moves the mirrored counters") {
  Metrics reg;
  StallMetrics m(reg, 200, "1");
  Health h = snapshot(1'000'000'000);
  m.health(h);
  Scrape s(reg.render());
  CHECK(s.at("loopstall_monitored_loops") == 4);
  CHECK(s.at("loopstall_loops{loop=\"gevent\"}") == 3);
  CHECK(s.at("loopstall_loops{loop=\"asyncio\"}") == 1);
  CHECK(s.at("loopstall_loops{loop=\"epoll\"}") == 0);  // every kind, 0 when none
  CHECK(s.at("loopstall_watched_processes") == 2);
  CHECK(s.at("loopstall_ongoing_stalls") == 1);
  CHECK(s.at("loopstall_longest_ongoing_stall_seconds") == 1.5);
  CHECK(s.at("loopstall_lost_events_total") == 7);
  CHECK(s.at("loopstall_samples_over_budget_total") == 2);
  CHECK(s.at("loopstall_bpf_iterations_total") == 1000);
  CHECK(s.at("loopstall_bpf_samples_skipped_total") == 5);
  CHECK(s.at("loopstall_bpf_run_state_repairs_total") == 1);
  CHECK(s.at("loopstall_bpf_map_full_total{map=\"procs\"}") == 3);
  CHECK(s.at("loopstall_bpf_map_full_total{map=\"loops\"}") == 0);
  CHECK(s.at("loopstall_bpf_map_entries{map=\"procs\"}") == 9);
  CHECK(s.at("loopstall_probe_attach_failures_total{probe=\"epoll_pwait2\"}") == 1);
  CHECK(s.at("loopstall_bpf_stats_enabled") == 0);
  CHECK(!s.has("loopstall_bpf_program_runs_total{program=\"on_epoll_wait\"}"));
  CHECK(s.at("process_resident_memory_bytes") == 20e6);
  CHECK(s.at("process_cpu_seconds_total") == 1.5);

  // Later snapshots: counters follow their source up, gauges go anywhere.
  h.now_ns += 1'000'000'000;
  h.counters_read_ns = h.now_ns;
  h.lost_events = 9;
  h.bpf.iterations = 1500;
  h.monitored_loops = 0;
  h.loops_by_kind = {};
  h.bpf_stats_enabled = true;
  h.programs = {{"on_epoll_wait", 120, 2'500'000}};
  m.health(h);
  s = Scrape(reg.render());
  CHECK(s.at("loopstall_lost_events_total") == 9);
  CHECK(s.at("loopstall_bpf_iterations_total") == 1500);
  CHECK(s.at("loopstall_monitored_loops") == 0);
  CHECK(s.at("loopstall_loops{loop=\"gevent\"}") == 0);
  CHECK(s.at("loopstall_bpf_stats_enabled") == 1);
  CHECK(s.at("loopstall_bpf_program_runs_total{program=\"on_epoll_wait\"}") == 120);
  CHECK(s.at("loopstall_bpf_program_run_seconds_total{program=\"on_epoll_wait\"}") == doctest::Approx(0.0025));

  // Between counter reads (a scan every 20 ms), the loops still move.
  h.now_ns += 20'000'000;
  h.monitored_loops = 2;
  h.bpf.iterations = 99999;  // not read again: counters_read_ns unchanged
  m.health(h);
  s = Scrape(reg.render());
  CHECK(s.at("loopstall_monitored_loops") == 2);
  CHECK(s.at("loopstall_bpf_iterations_total") == 1500);
}

TEST_CASE("service labels stay bounded and valid UTF-8") {
  ServiceLabels labels(2);
  CHECK(labels("a") == "a");
  CHECK(labels("b") == "b");
  CHECK(labels("c") == "other");
  CHECK(labels("a") == "a");

  // service comes from another process; one bad byte would make Prometheus
  // reject the whole scrape.
  Metrics reg;
  StallMetrics m(reg, 1, "1");
  m.stall(final_stall(200, Cause::Cpu, "x\xff\xfey\"\\\n", "c"));
  m.stall(final_stall(200, Cause::Cpu, "second", "c"));
  const std::string text = reg.render();
  const Scrape s(text);
  CHECK(s.at("loopstall_stalls_total{cause=\"cpu\",service=\"x\xef\xbf\xbd\xef\xbf\xbdy\"\\\n\"}") == 1);
  CHECK(s.at("loopstall_stalls_total{cause=\"cpu\",service=\"other\"}") == 1);
  CHECK(text.find("\xff") == std::string::npos);
}

TEST_CASE("series by service: memory stays bounded however many services come and go") {
  // Any local user names their processes' service (OTEL_SERVICE_NAME): a
  // name per process, thousands of processes. The labels were bounded, the
  // daemon's cache of series by raw name was not (~300 B per name, forever).
  Metrics reg;
  StallMetrics m(reg, 200, "1");
  IterationDelta d;
  d.count = 1;
  constexpr int kNames = 20000;
  for (int i = 0; i < kNames; ++i) m.iterations(static_cast<std::uint32_t>(i), "svc-" + std::to_string(i), d);
  // Invalid UTF-8 variants that all make one label value.
  for (int i = 0; i < 256; ++i) m.iterations(1, std::string("bad") + static_cast<char>(0x80 | (i & 0x3f)) + "x", d);
  CHECK(m.services_cached() <= StallMetrics::kMaxCachedServices);
  // Still exact: the first 200 services have their own series, the rest add up in "other".
  m.iterations(7, "svc-7", d);
  const Scrape s(reg.render());
  CHECK(s.at("loopstall_loop_iterations_total{service=\"svc-7\"}") == 2);
  CHECK(s.at("loopstall_loop_iterations_total{service=\"svc-199\"}") == 1);
  CHECK(!s.has("loopstall_loop_iterations_total{service=\"svc-200\"}"));
  CHECK(s.at("loopstall_loop_iterations_total{service=\"other\"}") == kNames - 200 + 256);
}

TEST_CASE("alerts firing follow the alert sink's rules; a rule gone on reload loses its series") {
  Metrics reg;
  StallMetrics m(reg, 200, "1");
  AlertRule big;
  big.name = "Big";
  big.stall_ms = 300;
  AlertRule hung;
  hung.name = "Hung";
  hung.kind = AlertRule::Kind::Hung;
  hung.hung_s = 1;
  AlertEngine alerts({big, hung}, nullptr, nullptr);
  m.watch_alerts(alerts, nullptr);
  alerts.stall(final_stall(500, Cause::Cpu, "api", "c"));
  Health h = snapshot(5'000'000'000);
  m.health(h);
  Scrape s(reg.render());
  CHECK(s.at("loopstall_alerts_firing{alert=\"Big\"}") == 1);
  CHECK(s.at("loopstall_alerts_firing{alert=\"Hung\"}") == 0);
  CHECK(!s.has("loopstall_alert_deliveries_total{result=\"ok\"}"));  // no Alertmanager configured

  alerts.set_rules({hung}, h.now_ns);
  h.now_ns += 1'000'000'000;
  h.counters_read_ns = h.now_ns;
  m.health(h);
  s = Scrape(reg.render());
  CHECK(!s.has("loopstall_alerts_firing{alert=\"Big\"}"));
  CHECK(s.at("loopstall_alerts_firing{alert=\"Hung\"}") == 0);
  CHECK(s.types.at("loopstall_alerts_firing") == "gauge");
}
