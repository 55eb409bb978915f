// loopstalld's configuration: a JSON file over built-in defaults. Every key
// is checked; an unknown key or a bad value is an error naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "loopstall/alert_rule.hpp"
#include "loopstall/event_coalescer.hpp"
#include "loopstall/procinfo.hpp"
#include "loopstall/service_name.hpp"
#include "loopstall/tuning.hpp"

namespace re2 {
class RE2;
}

namespace loopstall {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Matches a process when every given field matches (exe and cmdline are
// regular expressions searched in the text, unit is the exact service).
// The expressions are RE2 (linear time in the text, no recursion, bounded
// memory), compiled once when the configuration is parsed: cmdlines are
// chosen by whoever starts a process.
struct ProcessMatch {
  std::shared_ptr<const re2::RE2> exe, cmdline;
  std::optional<std::string> unit;
  bool matches(const ProcInfo& p) const;
};

struct Config {
  double threshold_ms = Tuning::kDefaultThresholdMs;
  double sample_hz = Tuning::kDefaultSampleHz;
  std::string metrics_listen = "127.0.0.1:9750";
  std::string events = "-";  // "" = off, "-" = stdout
  // Repeats folded into summaries in the event log (on in the daemon).
  CoalesceOptions event_coalescing{.enabled = true};
  // Bytes per second the event log's lines may take before stalls are
  // written without their stacks (json_sink.hpp); 0: no limit.
  std::uint64_t event_log_bytes_per_s = 256 * 1024;
  std::string control_socket = "/run/loopstalld/control.sock";
  bool all_loops = false;
  std::vector<ProcessMatch> include;  // empty: every Python process
  std::vector<ProcessMatch> exclude;
  std::size_t max_services = 200;
  // How processes are named (the `service` of events, metrics and alerts).
  ServiceNaming naming = ServiceNaming::defaults();
  // Labels added to every alert the daemon sends; "instance" defaults to the
  // host name.
  std::map<std::string, std::string> alert_labels;
  std::string alertmanager_url;  // "" = journal/stderr only
  int alertmanager_timeout_ms = 2000;
  std::vector<AlertRule> rules;

  Tuning tuning() const { return {threshold_ms, sample_hz}; }

  // Whether the include/exclude rules let this process be watched.
  bool accepts(const ProcInfo& p) const;
};

// Parses JSON text over the defaults; throws ConfigError("<key>: <why>").
Config parse_config(const std::string& json_text);
// Reads and parses the file; a file over kMaxConfigBytes is refused unread.
Config load_config(const std::string& path);

// Compiles a watch pattern as ProcessMatch uses it; throws ConfigError
// naming `key` for a bad or too complex one.
std::shared_ptr<const re2::RE2> compile_pattern(const std::string& pattern, const std::string& key);

// "HOST:PORT" -> {host, port}; throws ConfigError naming `key`.
std::pair<std::string, int> parse_listen(const std::string& value, const std::string& key);

}  // namespace loopstall
