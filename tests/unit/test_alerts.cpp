// Alert rules: when they fire, resolve, and what Alertmanager receives.
#include <doctest/doctest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "loopstall/alerts.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/config.hpp"
#include "test_util.hpp"

using namespace loopstall;
using loopstall::test::kMs;
using loopstall::test::kSec;

namespace {

AlertRule rule(const std::string& json_rule) {
  return parse_config(R"({"alerts": {"rules": [)" + json_rule + "]}}").rules.at(0);
}

StallReport stall(double ms, bool ongoing = false, const std::string& id = "7-abc") {
  StallReport r;
  r.stall_id = id;
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

// A health snapshot at now_ns, with the given loops inside an iteration.
Health health_at(std::uint64_t now_ns, std::vector<LoopInIteration> in_iteration = {}) {
  Health h;
  h.now_ns = now_ns;
  h.in_iteration = std::move(in_iteration);
  return h;
}

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

TEST_CASE("a storm of stalls in one service is one alert describing the latest stall") {
  Log log;
  AlertEngine e({rule(R"({"name": "Big", "stall_ms": 300})")}, nullptr, log.f, {}, {{"instance", "web-1"}});
  for (int i = 0; i < 50; ++i) e.stall(stall(400 + i, false, "7-" + std::to_string(i)));
  CHECK(log.count("alert firing") == 1);  // the journal is not flooded either
  CHECK(e.firing_counts().at("Big") == 1);
  CHECK(e.updates() == 49);
  CHECK(log.text().find("instance=\"web-1\"") != std::string::npos);
  // Another service is another alert.
  StallReport other = stall(500, false, "9-1");
  other.service = "billing";
  e.stall(other);
  CHECK(e.firing_counts().at("Big") == 2);
  CHECK(log.count("alert firing") == 2);
}

TEST_CASE("external labels are on every alert; the rule's own labels win over them") {
  Log log;
  AlertEngine e({rule(R"({"name": "Big", "stall_ms": 1, "labels": {"team": "payments"}})")}, nullptr, log.f, {},
                {{"instance", "web-1"}, {"cluster", "eu-1"}, {"team", "platform"}});
  e.stall(stall(50));
  const std::string t = log.text();
  CHECK(t.find("cluster=\"eu-1\"") != std::string::npos);
  CHECK(t.find("instance=\"web-1\"") != std::string::npos);
  CHECK(t.find("team=\"payments\"") != std::string::npos);
  CHECK(t.find("pid=") == std::string::npos);  // not part of the identity
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
  e.health(health_at(monotonic_ns() + 2 * kSec));  // the window has passed
  CHECK(log.count("alert resolved") == 1);
  CHECK(e.firing_counts().at("Often") == 0);
}

TEST_CASE("a frequent-stalls rule forgets the windows of services that stopped stalling") {
  // A service is named by its process (OTEL_SERVICE_NAME): thousands of
  // short processes, each stalling fewer times than the rule needs, left a
  // window per name for the daemon's life (the shipped config has such a rule).
  Log log;
  AlertEngine e({rule(R"({"name": "Often", "stalls": 5, "min_ms": 200, "window_s": 1})")}, nullptr, log.f);
  for (int i = 0; i < 1000; ++i) {
    StallReport r = stall(250);
    r.service = "svc-" + std::to_string(i);
    e.stall(r);
  }
  CHECK(e.windows_followed() == 1000);
  e.health(health_at(monotonic_ns() + 2 * kSec));  // every window has passed
  CHECK(e.windows_followed() == 0);
  CHECK(log.count("alert firing") == 0);
}

TEST_CASE("a hung-loop rule fires while hung and resolves when the loop returns") {
  Log log;
  AlertEngine e({rule(R"({"name": "Hung", "hung_s": 1, "severity": "critical"})")}, nullptr, log.f);
  const std::uint64_t start = 1000 * kSec;
  const LoopInIteration l{.pid = 7, .tid = 8, .iter_start_ns = start, .service = "api.service"};
  e.health(health_at(start + 500 * kMs, {l}));
  CHECK(log.count("firing") == 0);
  e.health(health_at(start + 1500 * kMs, {l}));
  CHECK(log.count("alert firing") == 1);
  CHECK(log.text().find("service=\"api.service\"") != std::string::npos);
  CHECK(log.text().find("tid 8") != std::string::npos);  // in the summary, not a label
  e.health(health_at(start + 2500 * kMs, {l}));          // still hung: no new alert
  CHECK(log.count("alert firing") == 1);
  CHECK(e.firing_counts().at("Hung") == 1);
  e.health(health_at(start + 2600 * kMs));  // returned to epoll_wait: no longer in an iteration
  CHECK(log.count("alert resolved") == 1);
  CHECK(e.firing_counts().at("Hung") == 0);
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

TEST_CASE("hung loops: one alert per service, however many of its loops hang") {
  Log log;
  AlertEngine e({rule(R"({"name": "Hung", "hung_s": 1})")}, nullptr, log.f);
  const std::uint64_t start = 1000 * kSec;
  const std::vector<LoopInIteration> hung = {
      {.pid = 7, .tid = 7, .iter_start_ns = start, .service = "api"},
      {.pid = 9, .tid = 9, .iter_start_ns = start, .service = "api"},
      {.pid = 11, .tid = 12, .iter_start_ns = start, .service = "billing"},
      {.pid = 13, .tid = 13, .iter_start_ns = start + 1900 * kMs, .service = "search"},  // young: not hung
  };
  e.health(health_at(start + 2 * kSec, hung));
  CHECK(log.count("alert firing") == 2);
  CHECK(e.firing_counts().at("Hung") == 2);
  CHECK(log.text().find("service=\"search\"") == std::string::npos);
  // billing's loop started a new iteration: its alert resolves, api's stays.
  e.health(health_at(start + 3 * kSec, {hung[0], hung[1], {11, 12, start + 2900 * kMs, "billing"}}));
  CHECK(log.count("alert resolved") == 1);
  CHECK(log.text().find("resolved alertname=\"Hung\" service=\"billing\"") != std::string::npos);
  CHECK(e.firing_counts().at("Hung") == 1);
}

TEST_CASE("a single-stall alert is held, then left to Alertmanager's endsAt") {
  Log log;
  AlertEngine e({rule(R"({"name": "Big", "stall_ms": 300})")}, nullptr, log.f);
  e.stall(stall(400));
  const std::uint64_t now = monotonic_ns();
  e.health(health_at(now + AlertEngine::kStallAlertHoldNs / 2));
  CHECK(e.firing_counts().at("Big") == 1);
  e.health(health_at(now + AlertEngine::kStallAlertHoldNs + kSec));
  CHECK(e.firing_counts().at("Big") == 0);
  CHECK(log.count("alert resolved") == 0);  // expired, not resolved: its endsAt says when
}
