// Config parsing: defaults, every key, and errors that name the key.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "loopstall/config.hpp"
#include "loopstall/limits.hpp"
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
  CHECK(c.event_coalescing.enabled);  // on in the daemon
  CHECK(c.event_coalescing.window_s == 10);
  CHECK(c.event_coalescing.burst == 5);
  CHECK(c.event_log_bytes_per_s == 256 * 1024);
}

TEST_CASE("event_log_bytes_per_s is read and checked") {
  CHECK(parse_config(R"({"event_log_bytes_per_s": 0})").event_log_bytes_per_s == 0);
  CHECK(parse_config(R"({"event_log_bytes_per_s": 1000000})").event_log_bytes_per_s == 1000000);
  CHECK(error_of(R"({"event_log_bytes_per_s": -1})").find("event_log_bytes_per_s: must be between") == 0);
  CHECK(error_of(R"({"event_log_bytes_per_s": 1.5})").find("event_log_bytes_per_s: must be a whole") == 0);
  CHECK(error_of(R"({"event_log_bytes_per_s": "1M"})").find("event_log_bytes_per_s") == 0);
}

TEST_CASE("event_coalescing is read and checked") {
  const Config c = parse_config(R"({"event_coalescing": {"enabled": false, "window_s": 30, "burst": 0}})");
  CHECK_FALSE(c.event_coalescing.enabled);
  CHECK(c.event_coalescing.window_s == 30);
  CHECK(c.event_coalescing.burst == 0);
  CHECK(parse_config(R"({"event_coalescing": {}})").event_coalescing.enabled);
  CHECK(error_of(R"({"event_coalescing": 1})").find("event_coalescing: must be an object") == 0);
  CHECK(error_of(R"({"event_coalescing": {"window_s": 0}})").find("event_coalescing.window_s: must be between") == 0);
  CHECK(error_of(R"({"event_coalescing": {"burst": 1.5}})").find("event_coalescing.burst: must be a whole") == 0);
  CHECK(error_of(R"({"event_coalescing": {"enabled": 1}})").find("event_coalescing.enabled") == 0);
  CHECK(error_of(R"({"event_coalescing": {"x": 1}})").find("event_coalescing.x: unknown key") == 0);
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
  auto proc = [](const char* exe, const char* cmdline, const char* unit) {
    ProcInfo p;
    p.python = true;
    p.exe = exe;
    p.cmdline = cmdline;
    p.unit = unit;
    p.service = "named-otherwise";  // `unit` matches the systemd unit, whatever the service name
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

TEST_CASE("cmdline patterns run in linear time on hostile cmdlines") {
  // The deploy README's own rule, and a pattern that backtracks
  // exponentially in a backtracking matcher: libstdc++'s std::regex
  // overflowed the stack on a 100 KB cmdline and took > 1 s on 25 chars.
  const Config c = parse_config(R"j({"watch": {"include": [{"cmdline": "celery .*worker"}, {"cmdline": "(a+)+$"}]}})j");
  ProcInfo p;
  p.python = true;
  p.exe = "/usr/bin/python3.11";
  p.cmdline = "celery " + std::string(1 << 20, 'a') + "b";  // 1 MB, neither rule matches
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(c.accepts(p));
  p.cmdline.back() = 'a';  // now (a+)+$ matches
  CHECK(c.accepts(p));
  p.cmdline = "celery " + std::string(1 << 20, 'x') + " worker";
  CHECK(c.accepts(p));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(s < 2.0);  // milliseconds in practice; ASan builds are slower
}

TEST_CASE("patterns are bytes: '.' steps over invalid UTF-8 and NUL-joined arguments") {
  const Config c = parse_config(R"({"watch": {"include": [{"cmdline": "^celery .* worker$"}]}})");
  ProcInfo p;
  p.cmdline = "celery \xff\xfe worker";
  CHECK(c.accepts(p));
}

TEST_CASE("a pattern RE2 cannot run is a config error naming the key") {
  // Backreferences and lookaround need backtracking: refused, not crashed on.
  CHECK(error_of(R"j({"watch": {"include": [{"cmdline": "(a)\\1"}]}})j").find("watch.include[0].cmdline: invalid") !=
        std::string::npos);
  CHECK(error_of(R"j({"watch": {"exclude": [{"exe": "(?=x)"}]}})j").find("watch.exclude[0].exe: invalid") !=
        std::string::npos);
  // Too big to compile within the memory bound.
  CHECK(error_of(R"j({"watch": {"include": [{"cmdline": "((((a{100}){100}){100}){100})"}]}})j")
            .find("watch.include[0].cmdline: invalid") != std::string::npos);
  std::string many = R"({"watch": {"include": [)";
  for (int i = 0; i < 101; ++i) many += std::string(i ? "," : "") + R"({"unit": "u"})";
  CHECK(error_of(many + "]}}").find("watch.include: at most 100") != std::string::npos);
}

TEST_CASE("alert rule names: checked without a regex, whatever their length") {
  const std::string long_name(1 << 20, 'a');
  CHECK(error_of(R"({"alerts": {"rules": [{"name": ")" + long_name + R"(", "stall_ms": 1}]}})").empty());
  CHECK(error_of(R"({"alerts": {"rules": [{"name": ")" + long_name + R"(-", "stall_ms": 1}]}})")
            .find("alerts.rules[0].name: must match") != std::string::npos);
  CHECK(error_of(R"({"alerts": {"rules": [{"name": "9a", "stall_ms": 1}]}})").find("name: must match") !=
        std::string::npos);
}

TEST_CASE("load_config refuses a file over kMaxConfigBytes without reading it all") {
  test::TempDir dir;
  dir.write("big.json", R"({"labels": {"max_services": 1}, "x": ")" + std::string(16 << 20, 'x') + "\"}");
  CHECK_THROWS_WITH_AS(load_config((dir.path() / "big.json").string()), doctest::Contains("big.json: larger than"),
                       ConfigError);
  // Just under the limit, deeply nested: parsed and refused, no recursion.
  const std::size_t depth = kMaxConfigBytes / 2 - 8;
  dir.write("deep.json", std::string(depth, '[') + std::string(depth, ']'));
  CHECK_THROWS_WITH_AS(load_config((dir.path() / "deep.json").string()), doctest::Contains("must be a JSON object"),
                       ConfigError);
}
