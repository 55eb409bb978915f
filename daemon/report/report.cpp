#include "loopstall/report.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "event_fields.hpp"
#include "loopstall/flamegraph.hpp"
#include "loopstall/printable.hpp"
#include "loopstall/sink.hpp"

namespace loopstall {
namespace {

using nlohmann::json;

using event_fields::num;
using event_fields::str;

// Most time first; frames by their own (self) time first: the frame a stall
// spent its time in is what a person fixes, the callers around it come after.
std::vector<ReportRow> ranked(std::map<std::string, ReportRow> rows, bool by_self = false) {
  std::vector<ReportRow> out;
  for (auto& [name, r] : rows) {
    r.name = name;
    out.push_back(std::move(r));
  }
  std::stable_sort(out.begin(), out.end(), [&](const ReportRow& a, const ReportRow& b) {
    if (by_self && a.self_ms != b.self_ms) return a.self_ms > b.self_ms;
    return a.ms > b.ms;
  });
  return out;
}

// Adds one stack's share of a stall: inclusive to each distinct frame name,
// self to the innermost.
void attribute(std::map<std::string, ReportRow>& rows, const std::vector<std::string>& names, double ms,
               std::set<std::string>& counted) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < names.size(); ++i) {
    ReportRow& row = rows[names[i]];
    if (i == 0) row.self_ms += ms;
    if (seen.insert(names[i]).second) row.ms += ms;
    if (counted.insert(names[i]).second) row.stalls++;
  }
}

// The flame graph's stacks without the loop and the state leaf, merged.
std::vector<ReportStack> culprit_stacks(const Capture& c) {
  std::map<std::string, ReportStack> merged;
  std::map<std::string, std::set<std::size_t>> stalls;
  for (const FlameStack& s : stall_stacks(c)) {
    ReportStack st;
    std::string key;
    for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) {
      if (f->kind == FrameKind::Python)
        st.python.push_back(f->name);
      else if (f->kind == FrameKind::Native)
        st.native.push_back(f->name);
      else
        continue;
      key += f->name + ";";
    }
    auto [it, fresh] = merged.try_emplace(key, std::move(st));
    it->second.ms += s.ms;
    stalls[key].insert(s.stall);
  }
  std::vector<ReportStack> out;
  for (auto& [key, st] : merged) {
    st.stalls = stalls[key].size();
    out.push_back(std::move(st));
  }
  std::stable_sort(out.begin(), out.end(), [](const ReportStack& a, const ReportStack& b) { return a.ms > b.ms; });
  return out;
}

}  // namespace

std::string python_frame_name(const json& f, bool with_line) {
  std::string name = str(f, "function") + " (" + str(f, "file");
  const auto line = f.find("line");
  if (with_line && line != f.end() && line->is_number_integer()) name += ":" + std::to_string(line->get<long long>());
  return name + ")";
}

std::string native_frame_name(const json& f) {
  const std::string sym = str(f, "symbol"), mod = str(f, "module");
  if (!sym.empty()) return sym + " (" + mod + ")";
  // A file offset is an unsigned integer; anything else in a file is shown as 0.
  const auto it = f.find("offset");
  const unsigned long long offset = it != f.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
  char off[32];
  std::snprintf(off, sizeof off, "+0x%llx", offset);
  return mod + off;
}

Report make_report(const Capture& c) {
  Report r;
  r.meta = c.meta;
  r.duration_s = c.duration_s();
  r.lost_events = c.lost_events;
  std::map<std::uint32_t, ReportLoop> loops;
  std::map<std::string, ReportRow> causes, py, native, syscalls;
  for (const json& ev : c.stalls) {
    const double ms = num(ev, "duration_ms");
    const bool ongoing = ev.value("ongoing", false);
    const auto pid = static_cast<std::uint32_t>(num(ev, "pid"));
    ReportLoop& l = loops[pid];
    l.pid = pid;
    l.comm = str(ev, "comm");
    l.service = str(ev, "service");
    l.loop = str(ev, "loop");
    (ongoing ? l.in_progress : l.stalls)++;
    l.stalled_ms += ms;
    l.max_stall_ms = std::max(l.max_stall_ms, ms);
    (ongoing ? r.in_progress : r.stalls)++;
    r.stalled_ms += ms;
    ReportRow& cause = causes[str(ev, "cause")];
    cause.stalls++;
    cause.ms += ms;
    if (const auto sc = ev.find("syscalls"); sc != ev.end() && sc->is_array())
      for (const json& s : *sc) {
        ReportRow& row = syscalls[str(s, "name")];
        row.stalls++;
        row.ms += num(s, "ms");
        row.self_ms += num(s, "ms");
      }
    // Python stacks share the stall by their samples.
    std::set<std::string> counted;
    if (const auto st = ev.find("python_stacks"); st != ev.end() && st->is_array()) {
      double total = 0;
      for (const json& s : *st) total += num(s, "samples");
      for (const json& s : *st) {
        const auto fr = s.find("frames");
        if (total <= 0 || fr == s.end() || !fr->is_array()) continue;
        std::vector<std::string> names;
        for (const json& f : *fr) names.push_back(python_frame_name(f, false));
        attribute(py, names, ms * num(s, "samples") / total, counted);
      }
    }
    counted.clear();
    if (const auto ns = ev.find("native_stack"); ns != ev.end() && ns->is_array()) {
      std::vector<std::string> names;
      for (const json& f : *ns) names.push_back(native_frame_name(f));
      attribute(native, names, ms, counted);
    }
  }
  for (const CaptureLoop& cl : c.loops) {
    ReportLoop& l = loops[cl.pid];
    l.pid = cl.pid;
    if (l.comm.empty()) l.comm = cl.comm;
    if (l.loop.empty()) l.loop = cl.loop;
    l.iterations = cl.iterations;
    l.iterations_per_s = r.duration_s > 0 ? static_cast<double>(cl.iterations) / r.duration_s : 0;
    l.p50_ms = hist_quantile_ms(cl.hist, 0.5);
    l.p99_ms = hist_quantile_ms(cl.hist, 0.99);
  }
  r.stacks = culprit_stacks(c);
  for (auto& [pid, l] : loops) r.loops.push_back(std::move(l));
  std::stable_sort(r.loops.begin(), r.loops.end(),
                   [](const ReportLoop& a, const ReportLoop& b) { return a.stalled_ms > b.stalled_ms; });
  r.causes = ranked(std::move(causes));
  r.python_functions = ranked(std::move(py), true);
  r.native_symbols = ranked(std::move(native), true);
  r.syscalls = ranked(std::move(syscalls));
  return r;
}

namespace {

void rows_text(std::string& out, const char* title, const std::vector<ReportRow>& rows, double total_ms,
               std::size_t top, bool with_self) {
  char buf[512];
  out += std::string("\n") + title + "\n";
  if (rows.empty()) {
    out += "  (none)\n";
    return;
  }
  if (with_self)
    std::snprintf(buf, sizeof buf, "  %10s %6s %10s %6s %7s  %s\n", "INCL_MS", "INCL%", "SELF_MS", "SELF%", "STALLS",
                  "NAME");
  else
    std::snprintf(buf, sizeof buf, "  %10s %6s %7s  %s\n", "MS", "%", "STALLS", "NAME");
  out += buf;
  for (std::size_t i = 0; i < rows.size() && i < top; ++i) {
    const ReportRow& r = rows[i];
    const double pct = total_ms > 0 ? 100.0 * r.ms / total_ms : 0,
                 self_pct = total_ms > 0 ? 100.0 * r.self_ms / total_ms : 0;
    if (with_self)
      std::snprintf(buf, sizeof buf, "  %10.1f %5.1f%% %10.1f %5.1f%% %7llu  %s\n", r.ms, pct, r.self_ms, self_pct,
                    static_cast<unsigned long long>(r.stalls), printable(r.name).c_str());
    else
      std::snprintf(buf, sizeof buf, "  %10.1f %5.1f%% %7llu  %s\n", r.ms, pct,
                    static_cast<unsigned long long>(r.stalls), printable(r.name).c_str());
    out += buf;
  }
  if (rows.size() > top) out += "  ... " + std::to_string(rows.size() - top) + " more\n";
}

// Each stack as its innermost Python frames, one a line, then a line of its
// innermost native frames: the top frames of the culprit, not only the last.
void stacks_text(std::string& out, const std::vector<ReportStack>& stacks, double total_ms, std::size_t top) {
  constexpr std::size_t kPython = 4, kNative = 3;
  char buf[512];
  out += "\nCulprit stacks (innermost frame first)\n";
  if (stacks.empty()) {
    out += "  (none)\n";
    return;
  }
  std::snprintf(buf, sizeof buf, "  %10s %6s %7s  %s\n", "MS", "%", "STALLS", "STACK");
  out += buf;
  const std::string indent(29, ' ');
  for (std::size_t i = 0; i < stacks.size() && i < top; ++i) {
    const ReportStack& s = stacks[i];
    std::snprintf(buf, sizeof buf, "  %10.1f %5.1f%% %7llu  ", s.ms, total_ms > 0 ? 100.0 * s.ms / total_ms : 0,
                  static_cast<unsigned long long>(s.stalls));
    out += buf;
    for (std::size_t k = 0; k < s.python.size() && k < kPython; ++k)
      out += (k ? indent + "  <- " : std::string()) + printable(s.python[k]) + "\n";
    if (s.python.size() > kPython) out += indent + "  <- ... " + std::to_string(s.python.size() - kPython) + " more\n";
    if (s.python.empty() && s.native.empty()) out += "(no stack)\n";
    if (s.native.empty()) continue;
    std::string line = s.python.empty() ? "" : indent + "native: ";
    for (std::size_t k = 0; k < s.native.size() && k < kNative; ++k) line += (k ? " <- " : "") + printable(s.native[k]);
    if (s.native.size() > kNative) line += " <- ...";
    out += line + "\n";
  }
  if (stacks.size() > top) out += "  ... " + std::to_string(stacks.size() - top) + " more\n";
}

nlohmann::ordered_json rows_json(const std::vector<ReportRow>& rows, double total_ms) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const ReportRow& r : rows)
    a.push_back({{"name", r.name},
                 {"stalls", r.stalls},
                 {"ms", r.ms},
                 {"share", total_ms > 0 ? r.ms / total_ms : 0.0},
                 {"self_ms", r.self_ms},
                 {"self_share", total_ms > 0 ? r.self_ms / total_ms : 0.0}});
  return a;
}

}  // namespace

std::string format_report_text(const Report& r, std::size_t top) {
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "loopstall report: %.1f s captured on %s (threshold %g ms): %llu stall(s), %llu still in progress at "
                "the end, %.1f ms stalled in all, %llu event(s) lost\n",
                r.duration_s, printable(r.meta.host).c_str(), r.meta.threshold_ms,
                static_cast<unsigned long long>(r.stalls), static_cast<unsigned long long>(r.in_progress), r.stalled_ms,
                static_cast<unsigned long long>(r.lost_events));
  out += buf;
  out += "\nLoops by stalled time\n";
  std::snprintf(buf, sizeof buf, "  %8s %-16s %-20s %-8s %7s %11s %9s %10s %9s %9s\n", "PID", "COMM", "SERVICE", "LOOP",
                "STALLS", "STALLED_MS", "MAX_MS", "ITER/S", "P50_MS<=", "P99_MS<=");
  out += buf;
  for (std::size_t i = 0; i < r.loops.size() && i < top; ++i) {
    const ReportLoop& l = r.loops[i];
    std::snprintf(buf, sizeof buf, "  %8u %-16s %-20s %-8s %7llu %11.1f %9.1f %10.1f %9.3f %9.3f\n", l.pid,
                  printable(l.comm).c_str(), printable(l.service.empty() ? "-" : l.service).c_str(),
                  printable(l.loop).c_str(), static_cast<unsigned long long>(l.stalls + l.in_progress), l.stalled_ms,
                  l.max_stall_ms, l.iterations_per_s, l.p50_ms, l.p99_ms);
    out += buf;
  }
  rows_text(out, "Stalls by cause", r.causes, r.stalled_ms, top, false);
  rows_text(out, "Python functions (share of stalled time)", r.python_functions, r.stalled_ms, top, true);
  rows_text(out, "Native symbols (share of stalled time)", r.native_symbols, r.stalled_ms, top, true);
  rows_text(out, "Blocking syscalls (time blocked in them)", r.syscalls, r.stalled_ms, top, false);
  stacks_text(out, r.stacks, r.stalled_ms, std::min<std::size_t>(top, 5));
  return out;
}

nlohmann::ordered_json report_to_json(const Report& r) {
  nlohmann::ordered_json j;
  j["capture"] = {{"host", r.meta.host},
                  {"kernel", r.meta.kernel},
                  {"loopstall_version", r.meta.loopstall_version},
                  {"threshold_ms", r.meta.threshold_ms},
                  {"start_unix_ns", r.meta.start_unix_ns},
                  {"end_unix_ns", r.meta.end_unix_ns},
                  {"duration_s", r.duration_s}};
  j["stalls"] = r.stalls;
  j["in_progress"] = r.in_progress;
  j["stalled_ms"] = r.stalled_ms;
  j["lost_events"] = r.lost_events;
  nlohmann::ordered_json loops = nlohmann::ordered_json::array();
  for (const ReportLoop& l : r.loops)
    loops.push_back({{"pid", l.pid},
                     {"comm", l.comm},
                     {"service", l.service},
                     {"loop", l.loop},
                     {"stalls", l.stalls},
                     {"in_progress", l.in_progress},
                     {"stalled_ms", l.stalled_ms},
                     {"max_stall_ms", l.max_stall_ms},
                     {"iterations", l.iterations},
                     {"iterations_per_s", l.iterations_per_s},
                     {"p50_ms", l.p50_ms},
                     {"p99_ms", l.p99_ms}});
  j["loops"] = std::move(loops);
  j["causes"] = rows_json(r.causes, r.stalled_ms);
  j["python_functions"] = rows_json(r.python_functions, r.stalled_ms);
  j["native_symbols"] = rows_json(r.native_symbols, r.stalled_ms);
  j["syscalls"] = rows_json(r.syscalls, r.stalled_ms);
  // Every culprit stack (text shows the top ones): frames innermost first.
  nlohmann::ordered_json stacks = nlohmann::ordered_json::array();
  for (const ReportStack& s : r.stacks)
    stacks.push_back({{"ms", s.ms},
                      {"share", r.stalled_ms > 0 ? s.ms / r.stalled_ms : 0.0},
                      {"stalls", s.stalls},
                      {"python", s.python},
                      {"native", s.native}});
  j["stacks"] = std::move(stacks);
  return j;
}

}  // namespace loopstall
