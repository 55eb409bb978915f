// The control protocol's request line, apart from the server so that it can
// be tested and fuzzed without a socket or a detector. No exceptions: the
// line is outside data.
#include <cstdint>
#include <string>

#include "loopstall/control_protocol.hpp"
#include "loopstall/limits.hpp"

namespace loopstall {
namespace {

using nlohmann::json;

constexpr std::uint32_t kMaxPid = 1u << 22;  // the kernel's PID_MAX_LIMIT
constexpr std::uint64_t kMaxTerminalColumns = 10000;

// Checks a capture request without exceptions; "" when it is fine.
std::string parse_capture(const json& req, CaptureRequest& c) {
  if (req.contains("pids")) {
    const json& pids = req["pids"];
    if (!pids.is_array()) return "pids must be an array of process ids";
    for (const json& p : pids) {
      if (!p.is_number_unsigned() || p.get<std::uint64_t>() == 0 || p.get<std::uint64_t>() > kMaxPid)
        return "pids must be process ids (1.." + std::to_string(kMaxPid) + ")";
      c.pids.push_back(static_cast<std::uint32_t>(p.get<std::uint64_t>()));
    }
  }
  if (req.contains("all_loops")) {
    if (!req["all_loops"].is_boolean()) return "all_loops must be true or false";
    c.all_loops = req["all_loops"].get<bool>();
  }
  if (req.contains("threshold_ms")) {
    if (!req["threshold_ms"].is_number()) return "threshold_ms must be a number";
    const Tuning t{.threshold_ms = req["threshold_ms"].get<double>()};
    if (auto why = t.error(); !why.empty()) return why;
    c.threshold_ms = t.threshold_ms;
  }
  if (req.contains("format")) {
    if (!req["format"].is_string()) return "format must be json or text";
    c.format = req["format"].get<std::string>();
    if (c.format != "json" && c.format != "text") return "format must be json or text";
  }
  if (req.contains("save")) {
    if (!req["save"].is_boolean()) return "save must be true or false";
    c.save = req["save"].get<bool>();
  }
  if (req.contains("terminal_columns")) {
    const json& cols = req["terminal_columns"];
    if (!cols.is_number_unsigned() || cols.get<std::uint64_t>() > kMaxTerminalColumns)
      return "terminal_columns must be 0.." + std::to_string(kMaxTerminalColumns);
    c.terminal_columns = static_cast<int>(cols.get<std::uint64_t>());
  }
  if (req.contains("ongoing_lines")) {
    if (!req["ongoing_lines"].is_boolean()) return "ongoing_lines must be true or false";
    c.ongoing_lines = req["ongoing_lines"].get<bool>();
  }
  if (req.contains("coalesce")) {
    if (!req["coalesce"].is_boolean()) return "coalesce must be true or false";
    c.coalesce = req["coalesce"].get<bool>();
  }
  return "";
}

}  // namespace

std::string control_line(const json& j) {
  // Outside data (an error message may quote the request) never makes dump()
  // throw: invalid UTF-8 becomes U+FFFD.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

ControlRequest parse_request(std::string_view line) {
  ControlRequest r;
  const json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded() || !req.is_object()) {
    r.error = "the request is not a JSON object";
  } else if (!req.contains("cmd") || !req["cmd"].is_string()) {
    r.error = "cmd must be a string";
  } else if (req["cmd"] == "status") {
    r.cmd = ControlRequest::Cmd::Status;
  } else if (req["cmd"] == "loops") {
    r.cmd = ControlRequest::Cmd::Loops;
  } else if (req["cmd"] != "capture") {
    r.error = "unknown cmd '" + req["cmd"].get<std::string>() + "'";
  } else {
    r.cmd = ControlRequest::Cmd::Capture;
    r.error = parse_capture(req, r.capture);
  }
  return r;
}

std::string request_line(const ControlRequest& r) {
  if (r.cmd == ControlRequest::Cmd::Status) return control_line({{"cmd", "status"}});
  if (r.cmd == ControlRequest::Cmd::Loops) return control_line({{"cmd", "loops"}});
  const CaptureRequest& c = r.capture;
  json j = {{"cmd", "capture"},
            {"pids", c.pids},
            {"threshold_ms", c.threshold_ms},
            {"all_loops", c.all_loops},
            {"format", c.format}};
  // Only when set: the line stays as it was for the rest.
  if (c.save) j["save"] = true;
  if (c.terminal_columns > 0) j["terminal_columns"] = c.terminal_columns;
  if (c.ongoing_lines) j["ongoing_lines"] = true;
  if (c.coalesce) j["coalesce"] = true;
  return control_line(j);
}

std::string answer_line(const ControlAnswer& a) {
  return control_line(a.ok ? json({{"ok", true}}) : json({{"ok", false}, {"error", a.error}}));
}

ControlAnswer parse_answer(std::string_view line) {
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  ControlAnswer a;
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
    a.error = std::string(line);
    return a;
  }
  a.ok = j["ok"].get<bool>();
  if (!a.ok) a.error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "?";
  return a;
}

}  // namespace loopstall
