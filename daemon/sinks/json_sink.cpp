#include "loopstall/json_sink.hpp"

#include <cmath>

namespace loopstall {
namespace {

// Microsecond resolution is what the kernel side measures meaningfully.
double round_us(double ms) {
  return std::round(ms * 1000.0) / 1000.0;
}

}  // namespace

nlohmann::ordered_json to_json(const StallReport& r) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["type"] = "stall";
  j["stall_id"] = r.stall_id;
  j["pid"] = r.pid;
  j["tid"] = r.tid;
  j["comm"] = r.comm;
  j["exe"] = r.exe;
  j["service"] = r.service;
  j["loop"] = std::string(to_string(r.loop));
  j["python_version"] = r.python_version ? ordered_json(*r.python_version) : ordered_json(nullptr);
  j["start_unix_ns"] = r.start_unix_ns;
  if (r.start_estimated) j["start_estimated"] = true;
  j["duration_ms"] = round_us(r.duration_ms);
  j["threshold_ms"] = r.threshold_ms;
  j["ongoing"] = r.ongoing;
  j["cause"] = std::string(to_string(r.cause));
  j["breakdown_ms"] = {{"on_cpu", round_us(r.breakdown.on_cpu_ms)},
                       {"blocked", round_us(r.breakdown.blocked_ms)},
                       {"runqueue", round_us(r.breakdown.runqueue_ms)},
                       {"gc", round_us(r.breakdown.gc_ms)}};
  ordered_json sc = ordered_json::array();
  for (const auto& s : r.syscalls)
    sc.push_back({{"name", s.name}, {"nr", s.nr}, {"ms", round_us(s.ms)}, {"count", s.count}});
  j["syscalls"] = std::move(sc);
  ordered_json stacks = ordered_json::array();
  for (const auto& st : r.python_stacks) {
    ordered_json frames = ordered_json::array();
    for (const auto& f : st.frames)
      frames.push_back({{"function", f.function},
                        {"file", f.file},
                        {"line", f.line ? ordered_json(*f.line) : ordered_json(nullptr)}});
    stacks.push_back({{"samples", st.samples}, {"frames", std::move(frames)}});
  }
  j["python_stacks"] = std::move(stacks);
  ordered_json native = ordered_json::array();
  for (const auto& f : r.native_stack)
    native.push_back({{"symbol", f.symbol}, {"module", f.module}, {"offset", f.offset}});
  j["native_stack"] = std::move(native);
  if (const auto& c = r.coalesced)
    j["coalesced"] = {{"count", c->count},
                      {"total_ms", round_us(c->total_ms)},
                      {"max_ms", round_us(c->max_ms)},
                      {"first_start_unix_ns", c->first_start_unix_ns},
                      {"last_start_unix_ns", c->last_start_unix_ns},
                      {"window_s", c->window_s}};
  return j;
}

void JsonLinesSink::stall(const StallReport& r) {
  // Replace invalid UTF-8 (comm and paths come from other processes).
  out_(to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace loopstall
