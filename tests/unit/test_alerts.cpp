// Alert rules: when they fire, resolve, and what Alertmanager receives.
#include <doctest/doctest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "loopstall/alerts.hpp"
#include "loopstall/clock.hpp"
#include "test_util.hpp"

using namespace loopstall;
using loopstall::test::kMs;
using loopstall::test::kSec;

namespace {

AlertRule rule(const std::string& json_rule) {
  return parse_config(R"({"alerts": {"rules": [)" + json_rule + "]}}").rules.at(0);
}

StallReport stall(double ms, bool ongoing = false) {
  StallReport r;
  r.stall_id = "7-abc";
  r.pid = 7;
  r.tid = 7;
  r.comm = "python3";
  r.service = "api.service";
  r.duration_ms = ms;
  r.ongoing = ongoing;
  r.cause = Cause::BlockingSyscall;
  r.syscalls = {{202, "futex", ms, 1}};
  return r;
}

// Captures the structured lines AlertEngine writes.
struct Log {
  Log() : f(std::tmpfile()) {}
  ~Log() { std::fclose(f); }
  std::string text() const {
    std::string out;
    std::rewind(f);
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    return out;
  }
  int count(const std::string& what) const {
    const std::string t = text();
    int n = 0;
    for (auto pos = t.find(what); pos != std::string::npos; pos = t.find(what, pos + 1)) n++;
    return n;
  }
  std::FILE* f;
};

// A correlator that watches pid 7 (a fake /proc).
struct Watching {
  test::CapturingSink sink;
  Correlator corr{Selection{}, 100, sink, [](std::uint32_t pid) -> std::optional<ProcInfo> {
                    ProcInfo p;
                    p.pid = pid;
                    p.python = true;
                    p.native_loop = LoopKind::Gevent;
                    p.comm = "python3";
                    p.service = "api.service";
                    return p;
                  }};
  Watching() { corr.classify(7); }
};

}  // namespace

TEST_CASE("a single-stall rule fires once per stall, from the ongoing report on") {
  Log log;
  AlertEngine e({rule(R"({"name": "Big", "stall_ms": 300})")}, nullptr, log.f);
  e.stall(stall(200, true));
  CHECK(log.count("firing") == 0);
  e.stall(stall(350, true));
  e.stall(stall(900, false));  // same stall: no second alert
  CHECK(log.count("alert firing") == 1);
  CHECK(log.text().find("alertname=\"Big\"") != std::string::npos);
  CHECK(log.text().find("service=\"api.service\"") != std::string::npos);
  CHECK(e.firing_counts().at("Big") == 1);
}

TEST_CASE("a frequent-stalls rule fires at N stalls in the window and resolves when it slides") {
  Log log;
  AlertEngine e({rule(R"({"name": "Often", "stalls": 3, "min_ms": 200, "window_s": 1})")}, nullptr, log.f);
  e.stall(stall(150));  // too short to count
  e.stall(stall(250));
  e.stall(stall(250));
  CHECK(log.count("alert firing") == 0);
  e.stall(stall(250));
  CHECK(log.count("alert firing") == 1);
  Watching w;
  e.tick({}, w.corr, monotonic_ns() + 2 * kSec);  // the window has passed
  CHECK(log.count("alert resolved") == 1);
  CHECK(e.firing_counts().at("Often") == 0);
}

TEST_CASE("a hung-loop rule fires while hung and resolves when the loop returns") {
  Log log;
  AlertEngine e({rule(R"({"name": "Hung", "hung_s": 1, "severity": "critical"})")}, nullptr, log.f);
  Watching w;
  const std::uint64_t start = 1000 * kSec;
  const ls_loop l = test::make_loop(7, 7, start);
  e.tick({l}, w.corr, start + 500 * kMs);
  CHECK(log.count("firing") == 0);
  e.tick({l}, w.corr, start + 1500 * kMs);
  CHECK(log.count("alert firing") == 1);
  CHECK(log.text().find("tid=\"7\"") != std::string::npos);
  e.tick({l}, w.corr, start + 2500 * kMs);  // still hung: no new alert
  CHECK(log.count("alert firing") == 1);
  ls_loop back = l;
  back.iter_start_ns = 0;  // returned to epoll_wait
  e.tick({back}, w.corr, start + 2600 * kMs);
  CHECK(log.count("alert resolved") == 1);
}

TEST_CASE("removing a rule on reload resolves its alerts") {
  Log log;
  AlertEngine e({rule(R"({"name": "Big", "stall_ms": 100})")}, nullptr, log.f);
  e.stall(stall(200));
  e.set_rules({}, monotonic_ns());
  CHECK(log.count("alert resolved") == 1);
  CHECK(e.firing_counts().empty());
}

TEST_CASE("the Alertmanager payload is the v2 shape") {
  Alert a;
  a.labels = {{"alertname", "Hung"}, {"severity", "critical"}};
  a.annotations = {{"summary", "s"}};
  a.starts_unix_ns = 1'700'000'000'123'000'000LL;
  a.ends_unix_ns = 1'700'000'060'000'000'000LL;
  const auto j = nlohmann::json::parse(alertmanager_payload({a}));
  REQUIRE(j.is_array());
  CHECK(j[0]["labels"]["alertname"] == "Hung");
  CHECK(j[0]["annotations"]["summary"] == "s");
  CHECK(j[0]["startsAt"] == "2023-11-14T22:13:20.123Z");
  CHECK(j[0]["endsAt"] == "2023-11-14T22:14:20.000Z");
}
