// `loopstall report`: what a person acts on after an incident, from a
// capture file -- the loops that stalled longest, causes, culprit functions
// (inclusive and self share of stalled time), blocking syscalls, and each
// loop's iteration rate and percentiles.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loopstall/capture_file.hpp"

namespace loopstall {

struct ReportRow {
  std::string name;
  std::uint64_t stalls = 0;  // stalls it took part in
  double ms = 0;             // stalled time attributed to it (inclusive)
  double self_ms = 0;        // ... while it was the innermost frame
};

// A culprit's stack: its Python frames, then the native frames they called
// into, innermost first (named as in flame graphs, with lines).
struct ReportStack {
  std::vector<std::string> python, native;
  double ms = 0;
  std::uint64_t stalls = 0;
};

struct ReportLoop {
  std::uint32_t pid = 0;
  std::string comm, service, loop;
  std::uint64_t stalls = 0, in_progress = 0;
  double stalled_ms = 0, max_stall_ms = 0;
  std::uint64_t iterations = 0;
  double iterations_per_s = 0, p50_ms = 0, p99_ms = 0;
};

struct Report {
  CaptureMeta meta;
  double duration_s = 0;
  std::uint64_t stalls = 0, in_progress = 0, lost_events = 0;
  double stalled_ms = 0;
  std::vector<ReportLoop> loops;            // most stalled time first
  std::vector<ReportRow> causes;            // most time first
  std::vector<ReportRow> python_functions;  // "function (file)", most self time first
  std::vector<ReportRow> native_symbols;    // "symbol (module)", most self time first
  std::vector<ReportRow> syscalls;          // blocked time per syscall
  std::vector<ReportStack> stacks;          // most time first
};

Report make_report(const Capture& c);
std::string format_report_text(const Report& r, std::size_t top = 10);
nlohmann::ordered_json report_to_json(const Report& r);

// How report and flame graphs name frames (the contract: `function
// (file:line)` / `symbol (module)` in flame graphs; report drops the line).
std::string python_frame_name(const nlohmann::json& frame, bool with_line);
std::string native_frame_name(const nlohmann::json& frame);

}  // namespace loopstall
