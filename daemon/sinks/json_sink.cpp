#include "loopstall/json_sink.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "loopstall/clock.hpp"
#include "loopstall/json_writer.hpp"
#include "loopstall/phase_times.hpp"

namespace loopstall {
namespace {

// Microsecond resolution is what the kernel side measures meaningfully.
double round_us(double ms) {
  return std::round(ms * 1000.0) / 1000.0;
}

// A Python frame, the bulk of a report: when its strings need no escaping
// (nearly always), written in one piece; the bytes are the same either way.
void frame_json(JsonWriter& w, const PyFrame& f) {
  if (!JsonWriter::plain(f.function) || !JsonWriter::plain(f.file)) {
    w.begin_object();
    w.key("function"), w.value(f.function);
    w.key("file"), w.value(f.file);
    w.key("line"), w.value(f.line);
    w.end_object();
    return;
  }
  char digits[16];
  const std::string_view line =
      f.line ? std::string_view(digits, std::to_chars(digits, digits + sizeof digits, *f.line).ptr) : "null";
  const std::string_view pieces[] = {
      "{\"function\":\"", f.function, "\",\"file\":\"", f.file, "\",\"line\":", line, "}"};
  std::size_t n = 0;
  for (const std::string_view p : pieces) n += p.size();
  char* out = w.raw_value(n);
  for (const std::string_view p : pieces) out = std::copy(p.begin(), p.end(), out);
}

}  // namespace

void append_stall_json(std::string& out, const StallReport& r, bool lean) {
  JsonWriter w(out);
  w.begin_object();
  w.key("type"), w.value("stall");
  w.key("stall_id"), w.value(r.stall_id);
  w.key("pid"), w.value(r.pid);
  w.key("tid"), w.value(r.tid);
  w.key("comm"), w.value(r.comm);
  w.key("exe"), w.value(lean ? std::string_view(r.exe).substr(0, kLeanExeBytes) : std::string_view(r.exe));
  w.key("service"), w.value(r.service);
  w.key("loop"), w.value(to_string(r.loop));
  w.key("python_version"), w.value(r.python_version);
  w.key("start_unix_ns"), w.value(r.start_unix_ns);
  if (r.start_estimated) w.key("start_estimated"), w.value(true);
  w.key("duration_ms"), w.value(round_us(r.duration_ms));
  w.key("threshold_ms"), w.value(r.threshold_ms);
  w.key("ongoing"), w.value(r.ongoing);
  w.key("cause"), w.value(to_string(r.cause));
  w.key("breakdown_ms"), w.begin_object();
  w.key("on_cpu"), w.value(round_us(r.breakdown.on_cpu_ms));
  w.key("blocked"), w.value(round_us(r.breakdown.blocked_ms));
  w.key("runqueue"), w.value(round_us(r.breakdown.runqueue_ms));
  w.key("gc"), w.value(round_us(r.breakdown.gc_ms));
  w.end_object();
  w.key("syscalls"), w.begin_array();
  for (const auto& s : r.syscalls) {
    w.begin_object();
    w.key("name"), w.value(s.name);
    w.key("nr"), w.value(s.nr);
    w.key("ms"), w.value(round_us(s.ms));
    w.key("count"), w.value(s.count);
    w.end_object();
  }
  w.end_array();
  w.key("python_stacks"), w.begin_array();
  static const std::vector<PyStack> kNoPython;
  static const std::vector<NativeFrame> kNoNative;
  for (const auto& st : lean ? kNoPython : r.python_stacks) {
    w.begin_object();
    w.key("samples"), w.value(st.samples);
    w.key("frames"), w.begin_array();
    for (const auto& f : st.frames) frame_json(w, f);
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.key("native_stack"), w.begin_array();
  for (const auto& f : lean ? kNoNative : r.native_stack) {
    w.begin_object();
    w.key("symbol"), w.value(f.symbol);
    w.key("module"), w.value(f.module);
    w.key("offset"), w.value(f.offset);
    w.end_object();
  }
  w.end_array();
  if (lean) w.key("stacks_omitted"), w.value(true);
  if (const auto& c = r.coalesced) {
    w.key("coalesced"), w.begin_object();
    w.key("count"), w.value(c->count);
    w.key("total_ms"), w.value(round_us(c->total_ms));
    w.key("max_ms"), w.value(round_us(c->max_ms));
    w.key("first_start_unix_ns"), w.value(c->first_start_unix_ns);
    w.key("last_start_unix_ns"), w.value(c->last_start_unix_ns);
    w.key("window_s"), w.value(c->window_s);
    w.end_object();
  }
  w.end_object();
}

std::string stall_json(const StallReport& r) {
  std::string out;
  append_stall_json(out, r);
  return out;
}

nlohmann::ordered_json to_json(const StallReport& r) {
  return nlohmann::ordered_json::parse(stall_json(r));
}

JsonLinesSink::JsonLinesSink(Writer out, EventLogBudget budget, Clock clock)
    : out_(std::move(out)),
      budget_(budget),
      clock_(clock ? std::move(clock) : Clock(monotonic_ns)),
      tokens_(budget.burst_bytes()) {}

// A token bucket of bytes, refilled at bytes_per_s; a line that fits spends
// its size.
bool JsonLinesSink::fits(std::size_t bytes) {
  const std::uint64_t now = clock_();
  if (refill_ns_ && now > refill_ns_)
    tokens_ = std::min(budget_.burst_bytes(), tokens_ + static_cast<double>(now - refill_ns_) * 1e-9 *
                                                            static_cast<double>(budget_.bytes_per_s));
  refill_ns_ = now;
  if (static_cast<double>(bytes) > tokens_) return false;
  tokens_ -= static_cast<double>(bytes);
  return true;
}

void JsonLinesSink::stall(const StallReport& r) {
  const PhaseTimer timer(Phase::kJson);
  // Invalid UTF-8 is replaced (comm and paths come from other processes).
  line_.clear();
  append_stall_json(line_, r);
  line_ += '\n';
  if (budget_.bytes_per_s && !fits(line_.size())) {
    line_.clear();
    append_stall_json(line_, r, true);
    line_ += '\n';
    ++stacks_omitted_;
  }
  out_(line_);
}

}  // namespace loopstall
