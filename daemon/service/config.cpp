#include "loopstall/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include <re2/re2.h>
#include <nlohmann/json.hpp>

#include "loopstall/limits.hpp"

namespace loopstall {
namespace {

using nlohmann::json;

// Per compiled pattern (RE2 falls back from its DFA to the NFA when the cache
// is full: still linear time), and patterns per list: 2 x 100 x 256 KiB at
// most, whatever the processes on the host look like.
constexpr std::int64_t kPatternMaxMem = 256 << 10;
constexpr std::size_t kMaxMatchers = 100;

[[noreturn]] void fail(const std::string& key, const std::string& why) {
  throw ConfigError(key + ": " + why);
}

void only_keys(const json& obj, const std::string& where, std::initializer_list<const char*> allowed) {
  const std::set<std::string> ok(allowed.begin(), allowed.end());
  for (const auto& [k, v] : obj.items())
    if (!ok.count(k)) fail(where.empty() ? k : where + "." + k, "unknown key");
}

const json& object_at(const json& j, const std::string& key) {
  if (!j.is_object()) fail(key, "must be an object");
  return j;
}

double number(const json& j, const std::string& key, double min, double max) {
  if (!j.is_number()) fail(key, "must be a number");
  const double v = j.get<double>();
  if (!(v >= min && v <= max)) {
    std::ostringstream os;
    os << "must be between " << min << " and " << max << " (got " << v << ")";
    fail(key, os.str());
  }
  return v;
}

// JSON Schema's integer: a number with no fraction (5.0 is one).
double integer(const json& j, const std::string& key, double min, double max) {
  const double v = number(j, key, min, max);
  if (v != std::floor(v)) fail(key, "must be a whole number");
  return v;
}

std::string string(const json& j, const std::string& key) {
  if (!j.is_string()) fail(key, "must be a string");
  return j.get<std::string>();
}

std::string nonempty(const json& j, const std::string& key) {
  std::string v = string(j, key);
  if (v.empty()) fail(key, "must not be empty");
  return v;
}

std::shared_ptr<const re2::RE2> pattern(const json& j, const std::string& key) {
  return compile_pattern(nonempty(j, key), key);
}

// Alert names become Prometheus label values and Alertmanager alertnames.
bool is_identifier(const std::string& s) {
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !alpha(s[0])) return false;
  for (char c : s)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

std::vector<ProcessMatch> matches(const json& j, const std::string& key) {
  if (!j.is_array()) fail(key, "must be an array of {exe, cmdline, unit} objects");
  if (j.size() > kMaxMatchers) fail(key, "at most " + std::to_string(kMaxMatchers) + " entries");
  std::vector<ProcessMatch> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string k = key + "[" + std::to_string(i) + "]";
    const json& m = object_at(j[i], k);
    only_keys(m, k, {"exe", "cmdline", "unit"});
    if (m.empty()) fail(k, "needs at least one of exe, cmdline, unit");
    ProcessMatch pm;
    if (m.contains("exe")) pm.exe = pattern(m["exe"], k + ".exe");
    if (m.contains("cmdline")) pm.cmdline = pattern(m["cmdline"], k + ".cmdline");
    if (m.contains("unit")) pm.unit = nonempty(m["unit"], k + ".unit");
    out.push_back(std::move(pm));
  }
  return out;
}

std::vector<ServiceRule> naming_rules(const json& j, const std::string& key) {
  if (!j.is_array()) fail(key, "must be an array of {from, ...} objects");
  if (j.size() > kMaxMatchers) fail(key, "at most " + std::to_string(kMaxMatchers) + " entries");
  std::vector<ServiceRule> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string k = key + "[" + std::to_string(i) + "]";
    const json& m = object_at(j[i], k);
    only_keys(m, k, {"from", "var", "regex", "name"});
    if (!m.contains("from")) fail(k + ".from", "required");
    const auto from = service_source(string(m["from"], k + ".from"));
    if (!from)
      fail(k + ".from",
           "must be one of env, systemd_unit, kubernetes, container, container_id, cmdline, exe, cgroup, script, comm");
    ServiceRule r;
    r.from = *from;
    using F = ServiceRule::From;
    const bool regex = r.from == F::Cmdline || r.from == F::Exe || r.from == F::Cgroup;
    if (r.from == F::Env) {
      if (!m.contains("var")) fail(k + ".var", "required with from \"env\"");
      r.var = string(m["var"], k + ".var");
      if (r.var.empty() || r.var.find('=') != std::string::npos || r.var.find('\0') != std::string::npos)
        fail(k + ".var", "must be an environment variable name");
    } else if (m.contains("var")) {
      fail(k + ".var", "goes only with from \"env\"");
    }
    if (regex) {
      if (!m.contains("regex")) fail(k + ".regex", std::string("required with from \"") + to_string(r.from) + "\"");
      r.pattern = pattern(m["regex"], k + ".regex");
      if (m.contains("name")) {
        r.name = string(m["name"], k + ".name");
        if (r.name.empty() || r.name.size() > kMaxServiceNameBytes)
          fail(k + ".name", "must be 1 to " + std::to_string(kMaxServiceNameBytes) + " bytes");
      }
    } else if (m.contains("regex") || m.contains("name")) {
      fail(k, "regex and name go only with from cmdline, exe or cgroup");
    }
    out.push_back(std::move(r));
  }
  return out;
}

AlertRule rule(const json& j, const std::string& key) {
  const json& r = object_at(j, key);
  only_keys(r, key, {"name", "severity", "labels", "stall_ms", "stalls", "min_ms", "window_s", "hung_s"});
  AlertRule a;
  if (!r.contains("name")) fail(key + ".name", "required");
  a.name = string(r["name"], key + ".name");
  if (!is_identifier(a.name)) fail(key + ".name", "must match [a-zA-Z_][a-zA-Z0-9_]*");
  if (r.contains("severity")) a.severity = nonempty(r["severity"], key + ".severity");
  if (r.contains("labels")) {
    const json& l = object_at(r["labels"], key + ".labels");
    for (const auto& [k, v] : l.items()) a.labels[k] = string(v, key + ".labels." + k);
  }
  const bool stall = r.contains("stall_ms"), freq = r.contains("stalls"), hung = r.contains("hung_s");
  if (int(stall) + int(freq) + int(hung) != 1)
    fail(key, "needs exactly one of stall_ms, stalls (with min_ms, window_s), hung_s");
  if (stall) {
    a.kind = AlertRule::Kind::Stall;
    a.stall_ms = number(r["stall_ms"], key + ".stall_ms", 0, 3.6e6);
  } else if (freq) {
    a.kind = AlertRule::Kind::Frequent;
    a.stalls = static_cast<std::uint32_t>(integer(r["stalls"], key + ".stalls", 1, 1e6));
    if (!r.contains("window_s")) fail(key + ".window_s", "required with stalls");
    a.window_s = number(r["window_s"], key + ".window_s", 1, 86400);
    a.min_ms = r.contains("min_ms") ? number(r["min_ms"], key + ".min_ms", 0, 3.6e6) : 0;
  } else {
    a.kind = AlertRule::Kind::Hung;
    a.hung_s = number(r["hung_s"], key + ".hung_s", 0.01, 86400);
  }
  if ((a.kind != AlertRule::Kind::Frequent) && (r.contains("min_ms") || r.contains("window_s")))
    fail(key, "min_ms and window_s go only with stalls");
  return a;
}

CoalesceOptions coalescing(const json& j, const std::string& key) {
  const json& o = object_at(j, key);
  only_keys(o, key, {"enabled", "window_s", "burst"});
  CoalesceOptions c{.enabled = true};
  if (o.contains("enabled")) {
    if (!o["enabled"].is_boolean()) fail(key + ".enabled", "must be true or false");
    c.enabled = o["enabled"].get<bool>();
  }
  if (o.contains("window_s")) c.window_s = number(o["window_s"], key + ".window_s", 1, 3600);
  if (o.contains("burst")) c.burst = static_cast<std::uint32_t>(integer(o["burst"], key + ".burst", 0, 1000));
  return c;
}

}  // namespace

std::shared_ptr<const re2::RE2> compile_pattern(const std::string& pattern, const std::string& key) {
  re2::RE2::Options opt;
  // Bytes, as the kernel stores them: a cmdline need not be UTF-8, and "."
  // must still step over any byte of it.
  opt.set_encoding(re2::RE2::Options::EncodingLatin1);
  opt.set_max_mem(kPatternMaxMem);
  opt.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(pattern, opt);
  if (!re->ok())
    fail(key, "invalid regular expression '" + pattern + "': " + re->error() +
                  " (RE2 syntax: no backreferences or lookaround; at most " + std::to_string(kPatternMaxMem >> 10) +
                  " KiB compiled)");
  return re;
}

bool ProcessMatch::matches(const ProcInfo& p) const {
  // PartialMatch is a search, like the old std::regex_search; RE2 runs in
  // time linear in the text and never recurses per character.
  if (exe && !re2::RE2::PartialMatch(p.exe, *exe)) return false;
  if (cmdline && !re2::RE2::PartialMatch(p.cmdline, *cmdline)) return false;
  if (unit && p.unit != *unit) return false;
  return true;
}

bool Config::accepts(const ProcInfo& p) const {
  for (const auto& m : exclude)
    if (m.matches(p)) return false;
  if (include.empty()) return true;
  for (const auto& m : include)
    if (m.matches(p)) return true;
  return false;
}

std::pair<std::string, int> parse_listen(const std::string& value, const std::string& key) {
  const auto colon = value.rfind(':');
  if (colon == std::string::npos || colon + 1 == value.size()) fail(key, "must be HOST:PORT (got '" + value + "')");
  std::string host = value.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  else if (host.find_first_of(": \t\n[]") != std::string::npos)
    fail(key, "must be HOST:PORT, an IPv6 address in brackets (got '" + value + "')");
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(value.substr(colon + 1), &used);
    if (used != value.size() - colon - 1 || used > 5 || !std::isdigit(static_cast<unsigned char>(value[colon + 1])))
      throw std::invalid_argument("not digits");
  } catch (const std::exception&) {
    fail(key, "port must be a number (got '" + value + "')");
  }
  if (port < 0 || port > 65535) fail(key, "port must be 0..65535");
  return {host, port};
}

Config parse_config(const std::string& text) {
  json j;
  // Duplicate keys would silently keep the last value: refuse them.
  std::vector<std::set<std::string>> seen;
  std::string duplicate;
  auto check_keys = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) seen.emplace_back();
    if (ev == json::parse_event_t::object_end && !seen.empty()) seen.pop_back();
    if (ev == json::parse_event_t::key && !seen.empty() && !seen.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    j = json::parse(text, check_keys);
  } catch (const json::exception& e) {  // syntax errors and numbers out of range
    throw ConfigError(std::string("invalid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail(duplicate, "duplicate key");
  if (!j.is_object()) throw ConfigError("the configuration must be a JSON object");
  only_keys(j, "",
            {"threshold_ms", "sample_hz", "metrics_listen", "events", "event_coalescing", "event_log_bytes_per_s",
             "control_socket", "watch", "service_names", "labels", "alerts"});
  Config c;
  if (j.contains("threshold_ms"))
    c.threshold_ms = number(j["threshold_ms"], "threshold_ms", kMinThresholdMs, kMaxThresholdMs);
  if (j.contains("sample_hz"))
    c.sample_hz = number(j["sample_hz"], "sample_hz", Tuning::kMinSampleHz, Tuning::kMaxSampleHz);
  if (j.contains("metrics_listen")) {
    c.metrics_listen = string(j["metrics_listen"], "metrics_listen");
    parse_listen(c.metrics_listen, "metrics_listen");
  }
  if (j.contains("events")) c.events = string(j["events"], "events");
  if (j.contains("event_coalescing")) c.event_coalescing = coalescing(j["event_coalescing"], "event_coalescing");
  if (j.contains("event_log_bytes_per_s"))
    c.event_log_bytes_per_s =
        static_cast<std::uint64_t>(integer(j["event_log_bytes_per_s"], "event_log_bytes_per_s", 0, 1 << 30));
  if (j.contains("control_socket")) c.control_socket = string(j["control_socket"], "control_socket");
  if (j.contains("watch")) {
    const json& w = object_at(j["watch"], "watch");
    only_keys(w, "watch", {"all_loops", "include", "exclude"});
    if (w.contains("all_loops")) {
      if (!w["all_loops"].is_boolean()) fail("watch.all_loops", "must be true or false");
      c.all_loops = w["all_loops"].get<bool>();
    }
    if (w.contains("include")) c.include = matches(w["include"], "watch.include");
    if (w.contains("exclude")) c.exclude = matches(w["exclude"], "watch.exclude");
  }
  if (j.contains("service_names")) c.naming.rules = naming_rules(j["service_names"], "service_names");
  if (j.contains("labels")) {
    const json& l = object_at(j["labels"], "labels");
    only_keys(l, "labels", {"max_services"});
    if (l.contains("max_services"))
      c.max_services = static_cast<std::size_t>(integer(l["max_services"], "labels.max_services", 1, 100000));
  }
  if (j.contains("alerts")) {
    const json& a = object_at(j["alerts"], "alerts");
    only_keys(a, "alerts", {"alertmanager", "labels", "rules"});
    if (a.contains("labels")) {
      const json& l = object_at(a["labels"], "alerts.labels");
      for (const auto& [k, v] : l.items()) {
        if (!is_identifier(k)) fail("alerts.labels." + k, "label names must match [a-zA-Z_][a-zA-Z0-9_]*");
        if (k == "alertname" || k == "severity" || k == "service")
          fail("alerts.labels." + k, "is set by the daemon for each alert");
        c.alert_labels[k] = string(v, "alerts.labels." + k);
      }
    }
    if (a.contains("alertmanager")) {
      const json& am = object_at(a["alertmanager"], "alerts.alertmanager");
      only_keys(am, "alerts.alertmanager", {"url", "timeout_ms"});
      if (am.contains("url")) {
        c.alertmanager_url = string(am["url"], "alerts.alertmanager.url");
        if (c.alertmanager_url.rfind("http://", 0) != 0 && c.alertmanager_url.rfind("https://", 0) != 0)
          fail("alerts.alertmanager.url", "must start with http:// or https://");
      }
      if (am.contains("timeout_ms"))
        c.alertmanager_timeout_ms =
            static_cast<int>(integer(am["timeout_ms"], "alerts.alertmanager.timeout_ms", 1, 60000));
    }
    if (a.contains("rules")) {
      if (!a["rules"].is_array()) fail("alerts.rules", "must be an array");
      std::set<std::string> names;
      for (std::size_t i = 0; i < a["rules"].size(); ++i) {
        const std::string k = "alerts.rules[" + std::to_string(i) + "]";
        c.rules.push_back(rule(a["rules"][i], k));
        if (!names.insert(c.rules.back().name).second) fail(k + ".name", "duplicate rule name");
      }
    }
  }
  return c;
}

Config load_config(const std::string& path) {
  // Read at most one byte past the limit: a huge file is refused without
  // being held in memory (nlohmann's DOM costs ~20x the text).
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(path + ": cannot be read: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  while (text.size() <= kMaxConfigBytes) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      throw ConfigError(path + ": cannot be read: " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  if (text.size() > kMaxConfigBytes)
    throw ConfigError(path + ": larger than " + std::to_string(kMaxConfigBytes >> 10) +
                      " KiB; not a loopstalld configuration");
  try {
    return parse_config(text);
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

}  // namespace loopstall
