// Config parsing: defaults, every key, and errors that name the key.
#include <doctest/doctest.h>

#include <string>

#include "loopstall/config.hpp"
#include "test_util.hpp"

using namespace loopstall;

namespace {

// The ConfigError message for `json`, or "" when it parses.
std::string error_of(const std::string& json) {
  try {
    parse_config(json);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("an empty object gives the built-in defaults") {
  const Config c = parse_config("{}");
  CHECK(c.threshold_ms == 100);
  CHECK(c.metrics_listen == "127.0.0.1:9750");
  CHECK(c.control_socket == "/run/loopstalld/control.sock");
  CHECK(c.events == "-");
  CHECK(c.rules.empty());
  CHECK(c.max_services == 200);
}

TEST_CASE("every documented key is read") {
  const Config c = parse_config(R"({
    "threshold_ms": 250, "sample_hz": 49, "metrics_listen": "0.0.0.0:9999", "events": "",
    "control_socket": "/tmp/x.sock",
    "watch": {"all_loops": true, "include": [{"unit": "gunicorn.service"}], "exclude": [{"exe": "bad$"}]},
    "labels": {"max_services": 7},
    "alerts": {"alertmanager": {"url": "http://127.0.0.1:9093/", "timeout_ms": 500},
               "rules": [{"name": "A", "stall_ms": 1000, "severity": "critical", "labels": {"team": "x"}},
                         {"name": "B", "stalls": 3, "min_ms": 200, "window_s": 60},
                         {"name": "C", "hung_s": 5}]}})");
  CHECK(c.threshold_ms == 250);
  CHECK(c.sample_hz == 49);
  CHECK(c.metrics_listen == "0.0.0.0:9999");
  CHECK(c.events.empty());
  CHECK(c.all_loops);
  CHECK(c.max_services == 7);
  CHECK(c.alertmanager_url == "http://127.0.0.1:9093/");
  CHECK(c.alertmanager_timeout_ms == 500);
  REQUIRE(c.rules.size() == 3);
  CHECK(c.rules[0].kind == AlertRule::Kind::Stall);
  CHECK(c.rules[0].severity == "critical");
  CHECK(c.rules[0].labels.at("team") == "x");
  CHECK(c.rules[1].kind == AlertRule::Kind::Frequent);
  CHECK(c.rules[1].stalls == 3);
  CHECK(c.rules[1].window_s == 60);
  CHECK(c.rules[2].kind == AlertRule::Kind::Hung);
  CHECK(c.rules[2].severity == "warning");
}

TEST_CASE("errors name the key") {
  CHECK(error_of(R"({"treshold_ms": 5})").find("treshold_ms: unknown key") != std::string::npos);
  CHECK(error_of(R"({"watch": {"inclde": []}})").find("watch.inclde: unknown key") != std::string::npos);
  CHECK(error_of(R"({"threshold_ms": "x"})").find("threshold_ms: must be a number") != std::string::npos);
  CHECK(error_of(R"({"threshold_ms": 0})").find("threshold_ms: must be between") != std::string::npos);
  CHECK(error_of(R"({"watch": {"include": [{"exe": "("}]}})").find("watch.include[0].exe: invalid regular") !=
        std::string::npos);
  CHECK(error_of(R"({"watch": {"include": [{}]}})").find("watch.include[0]: needs at least one") != std::string::npos);
  CHECK(error_of(R"({"alerts": {"rules": [{"name": "A", "stall_ms": 1, "hung_s": 2}]}})")
            .find("alerts.rules[0]: needs exactly one") != std::string::npos);
  CHECK(error_of(R"({"alerts": {"rules": [{"name": "A", "stalls": 2}]}})").find("alerts.rules[0].window_s") !=
        std::string::npos);
  CHECK(error_of(R"({"alerts": {"rules": [{"name": "A", "stall_ms": 1}, {"name": "A", "hung_s": 1}]}})")
            .find("alerts.rules[1].name: duplicate") != std::string::npos);
  CHECK(error_of(R"({"alerts": {"rules": [{"name": "bad name", "stall_ms": 1}]}})").find("alerts.rules[0].name") !=
        std::string::npos);
  CHECK(error_of(R"({"alerts": {"alertmanager": {"url": "ftp://x"}}})").find("alerts.alertmanager.url") !=
        std::string::npos);
  CHECK(error_of(R"({"metrics_listen": "nohost"})").find("metrics_listen: must be HOST:PORT") != std::string::npos);
  CHECK(error_of(R"({"metrics_listen": "h:99999"})").find("metrics_listen: port") != std::string::npos);
  CHECK(error_of("{not json").find("invalid JSON") != std::string::npos);
  CHECK(error_of("[1]").find("must be a JSON object") != std::string::npos);
}

TEST_CASE("load_config names the file") {
  test::TempDir dir;
  dir.write("bad.json", R"({"x": 1})");
  CHECK_THROWS_WITH_AS(load_config((dir.path() / "bad.json").string()), doctest::Contains("bad.json: x: unknown key"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(load_config((dir.path() / "missing.json").string()), doctest::Contains("cannot be read"),
                       ConfigError);
}

TEST_CASE("include and exclude rules decide which processes are watched") {
  const Config c = parse_config(R"({"watch": {
      "include": [{"unit": "gunicorn.service"}, {"cmdline": "uvicorn"}],
      "exclude": [{"exe": "python3\\.8$"}]}})");
  auto proc = [](const char* exe, const char* cmdline, const char* service) {
    ProcInfo p;
    p.python = true;
    p.exe = exe;
    p.cmdline = cmdline;
    p.service = service;
    return p;
  };
  const ProcInfo gunicorn = proc("/usr/bin/python3.11", "gunicorn app", "gunicorn.service");
  const ProcInfo uvicorn = proc("/usr/bin/python3.11", "python -m uvicorn main:app", "");
  const ProcInfo other = proc("/usr/bin/python3.11", "python worker.py", "");
  const ProcInfo old = proc("/usr/bin/python3.8", "python -m uvicorn", "gunicorn.service");
  CHECK(c.accepts(gunicorn));
  CHECK(c.accepts(uvicorn));
  CHECK_FALSE(c.accepts(other));
  CHECK_FALSE(c.accepts(old));               // exclude wins
  CHECK(parse_config("{}").accepts(other));  // no include: everything
}

TEST_CASE("parse_listen") {
  CHECK(parse_listen("127.0.0.1:9750", "k") == std::pair<std::string, int>{"127.0.0.1", 9750});
  CHECK(parse_listen(":80", "k") == std::pair<std::string, int>{"127.0.0.1", 80});
  CHECK(parse_listen("[::1]:80", "k") == std::pair<std::string, int>{"::1", 80});
  CHECK_THROWS_AS(parse_listen("x:", "k"), ConfigError);
  CHECK_THROWS_AS(parse_listen("x:12ab", "k"), ConfigError);
}

TEST_CASE("duplicate keys and numbers out of range are errors") {
  CHECK(error_of(R"({"threshold_ms": 100, "threshold_ms": 200})").find("threshold_ms: duplicate key") !=
        std::string::npos);
  CHECK(error_of(R"({"watch": {"all_loops": true, "all_loops": false}})").find("all_loops: duplicate key") !=
        std::string::npos);
  CHECK(error_of(R"({"threshold_ms": 1e400})").find("invalid JSON") != std::string::npos);
  CHECK(error_of(R"({"a": {"x": 1}, "b": {"x": 2}})").find("duplicate") == std::string::npos);  // other objects
}
