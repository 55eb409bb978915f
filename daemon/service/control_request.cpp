// The control protocol's request line, apart from the server so that it can
// be tested and fuzzed without a socket or a detector. No exceptions: the
// line is outside data.
#include <cstdint>
#include <string>

#include "loopstall/control.hpp"
#include "loopstall/limits.hpp"

namespace loopstall {
namespace {

using nlohmann::json;

constexpr std::uint32_t kMaxPid = 1u << 22;  // the kernel's PID_MAX_LIMIT

// Checks a capture request without exceptions; "" when it is fine.
std::string parse_capture(const json& req, Selection& sel, double& threshold, std::string& format) {
  if (req.contains("pids")) {
    const json& pids = req["pids"];
    if (!pids.is_array()) return "pids must be an array of process ids";
    for (const json& p : pids) {
      if (!p.is_number_unsigned() || p.get<std::uint64_t>() == 0 || p.get<std::uint64_t>() > kMaxPid)
        return "pids must be process ids (1.." + std::to_string(kMaxPid) + ")";
      sel.pids.insert(static_cast<std::uint32_t>(p.get<std::uint64_t>()));
    }
  }
  if (req.contains("all_loops")) {
    if (!req["all_loops"].is_boolean()) return "all_loops must be true or false";
    sel.all_loops = req["all_loops"].get<bool>();
  }
  if (req.contains("threshold_ms")) {
    if (!req["threshold_ms"].is_number()) return "threshold_ms must be a number";
    threshold = req["threshold_ms"].get<double>();
    if (auto why = range_error(threshold, kMinThresholdMs, kMaxThresholdMs); !why.empty()) return "threshold_ms " + why;
  }
  if (req.contains("format")) {
    if (!req["format"].is_string()) return "format must be json or text";
    format = req["format"].get<std::string>();
    if (format != "json" && format != "text") return "format must be json or text";
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
    r.error = parse_capture(req, r.selection, r.threshold_ms, r.format);
  }
  return r;
}

}  // namespace loopstall
