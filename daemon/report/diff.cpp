#include "loopstall/diff.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "event_fields.hpp"
#include "loopstall/printable.hpp"
#include "loopstall/report.hpp"
#include "loopstall/sink.hpp"

namespace loopstall {
namespace {

using nlohmann::json;

std::string loop_key(const std::string& comm, const std::string& loop) {
  return comm + " [" + loop + "]";
}

// Rounded as printed, without "-0.0".
double tenths(double v) {
  const double r = std::round(v * 10) / 10;
  return r == 0 ? 0.0 : r;
}

struct LoopSide {
  double ms = 0, max_ms = 0;
  IterationHist hist{};
};

std::map<std::string, LoopSide> loop_sides(const Capture& c) {
  std::map<std::string, LoopSide> out;
  for (const json& ev : c.stalls) {
    // Lenient, as every reader of a stall event's other fields (capture_file.cpp):
    // a comm that is not a string is "", not an exception out of `diff`.
    LoopSide& s = out[loop_key(event_fields::str(ev, "comm"), event_fields::str(ev, "loop"))];
    const double ms = ev["duration_ms"].get<double>();  // read_capture checked it is a number
    s.ms += ms;
    s.max_ms = std::max(s.max_ms, ms);
  }
  for (const CaptureLoop& l : c.loops) {
    LoopSide& s = out[loop_key(l.comm, l.loop)];
    for (std::size_t i = 0; i < s.hist.size(); ++i) s.hist[i] += l.hist[i];
  }
  return out;
}

// The longest iteration: a stall's exact length, else the histogram's bound.
double longest(const LoopSide& s) {
  return s.max_ms > 0 ? s.max_ms : hist_quantile_ms(s.hist, 1.0);
}

template <typename Row>
void by_change(std::vector<Row>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
    const double dx = std::fabs(x.delta()), dy = std::fabs(y.delta());
    if (dx != dy) return dx > dy;
    return x.name < y.name;
  });
}

std::vector<DiffRow> join(const std::vector<ReportRow>& a, const std::vector<ReportRow>& b, bool self) {
  std::map<std::string, DiffRow> rows;
  for (const ReportRow& r : a) rows[r.name].a_ms = self ? r.self_ms : r.ms;
  for (const ReportRow& r : b) rows[r.name].b_ms = self ? r.self_ms : r.ms;
  std::vector<DiffRow> out;
  for (auto& [name, r] : rows) {
    if (r.a_ms <= 0 && r.b_ms <= 0) continue;  // callers only: no self time on either side
    r.name = name;
    out.push_back(r);
  }
  by_change(out);
  return out;
}

void rows_text(std::string& out, const char* title, const std::vector<DiffRow>& rows, std::size_t top) {
  char buf[512];
  out += std::string("\n") + title + "\n";
  if (rows.empty()) {
    out += "  (none)\n";
    return;
  }
  std::snprintf(buf, sizeof buf, "  %10s %10s %10s  %s\n", "A_MS", "B_MS", "DELTA_MS", "NAME");
  out += buf;
  for (std::size_t i = 0; i < rows.size() && i < top; ++i) {
    const DiffRow& r = rows[i];
    std::snprintf(buf, sizeof buf, "  %10.1f %10.1f %+10.1f  %s\n", r.a_ms, r.b_ms, tenths(r.delta()),
                  printable(r.name).c_str());
    out += buf;
  }
  if (rows.size() > top) out += "  ... " + std::to_string(rows.size() - top) + " more\n";
}

}  // namespace

CaptureDiff diff_captures(const Capture& a, const Capture& b, const std::string& a_name, const std::string& b_name) {
  const Report ra = make_report(a), rb = make_report(b);
  CaptureDiff d;
  d.a_name = a_name;
  d.b_name = b_name;
  d.a_duration_s = ra.duration_s;
  d.b_duration_s = rb.duration_s;
  d.a_ms = ra.stalled_ms;
  d.b_ms = rb.stalled_ms;
  d.a_stalls = ra.stalls + ra.in_progress;
  d.b_stalls = rb.stalls + rb.in_progress;
  d.python_functions = join(ra.python_functions, rb.python_functions, true);
  d.native_symbols = join(ra.native_symbols, rb.native_symbols, true);
  d.causes = join(ra.causes, rb.causes, false);
  d.syscalls = join(ra.syscalls, rb.syscalls, false);
  const auto la = loop_sides(a), lb = loop_sides(b);
  std::map<std::string, DiffLoop> loops;
  for (const auto& [sides, side] : {std::pair{&la, &DiffLoop::a}, std::pair{&lb, &DiffLoop::b}})
    for (const auto& [key, s] : *sides) {
      DiffLoopSide& l = loops[key].*side;
      l.ms = s.ms;
      l.p50 = hist_quantile_ms(s.hist, 0.5);
      l.p99 = hist_quantile_ms(s.hist, 0.99);
      l.max = longest(s);
    }
  for (auto& [key, l] : loops) {
    l.name = key;
    d.loops.push_back(l);
  }
  by_change(d.loops);
  return d;
}

std::string format_diff_text(const CaptureDiff& d, std::size_t top) {
  std::string out;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "loopstall diff: A = %s (%.1f s, %zu stall(s), %.1f ms stalled)\n"
                "                B = %s (%.1f s, %zu stall(s), %.1f ms stalled)\n"
                "                stalled time %+.1f ms from A to B\n",
                printable(d.a_name).c_str(), d.a_duration_s, d.a_stalls, d.a_ms, printable(d.b_name).c_str(),
                d.b_duration_s, d.b_stalls, d.b_ms, tenths(d.b_ms - d.a_ms));
  out += buf;
  rows_text(out, "Python functions (self stalled time)", d.python_functions, top);
  rows_text(out, "Native symbols (self stalled time)", d.native_symbols, top);
  rows_text(out, "Stalls by cause", d.causes, top);
  rows_text(out, "Blocking syscalls (time blocked in them)", d.syscalls, top);
  out += "\nLoops (stalled time; iteration time percentiles, A -> B)\n";
  if (d.loops.empty())
    out += "  (none)\n";
  else {
    std::snprintf(buf, sizeof buf, "  %10s %10s %10s %19s %19s %21s  %s\n", "A_MS", "B_MS", "DELTA_MS",
                  "P50_MS<=", "P99_MS<=", "MAX_MS", "LOOP");
    out += buf;
  }
  for (std::size_t i = 0; i < d.loops.size() && i < top; ++i) {
    const DiffLoop& l = d.loops[i];
    std::snprintf(buf, sizeof buf, "  %10.1f %10.1f %+10.1f %8.3f -> %-8.3f %8.3f -> %-8.3f %9.1f -> %-9.1f  %s\n",
                  l.a.ms, l.b.ms, tenths(l.delta()), l.a.p50, l.b.p50, l.a.p99, l.b.p99, l.a.max, l.b.max,
                  printable(l.name).c_str());
    out += buf;
  }
  if (d.loops.size() > top) out += "  ... " + std::to_string(d.loops.size() - top) + " more\n";
  return out;
}

}  // namespace loopstall
