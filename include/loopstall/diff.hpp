// `loopstall diff A B`: what changed from capture A to capture B -- stalled
// time per culprit, per cause and per loop, and each loop's iteration
// percentiles, as text tables sorted by the size of the change.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "loopstall/capture_file.hpp"

namespace loopstall {

struct DiffRow {
  std::string name;
  double a_ms = 0, b_ms = 0;
  double delta() const { return b_ms - a_ms; }
};

// One loop in both captures. Loops are matched by command name and framework
// ("python3.11 [gevent]"): pids differ from one capture to the next.
struct DiffLoopSide {
  double ms = 0;                     // stalled time
  double p50 = 0, p99 = 0, max = 0;  // iteration time
};

struct DiffLoop {
  std::string name;
  DiffLoopSide a, b;
  double delta() const { return b.ms - a.ms; }
};

struct CaptureDiff {
  std::string a_name, b_name;
  double a_duration_s = 0, b_duration_s = 0, a_ms = 0, b_ms = 0;
  std::size_t a_stalls = 0, b_stalls = 0;
  std::vector<DiffRow> python_functions;  // self time: where the stalls spent it
  std::vector<DiffRow> native_symbols;    // self time
  std::vector<DiffRow> causes, syscalls;
  std::vector<DiffLoop> loops;  // each list: largest |delta| first
};

CaptureDiff diff_captures(const Capture& a, const Capture& b, const std::string& a_name, const std::string& b_name);
std::string format_diff_text(const CaptureDiff& d, std::size_t top = 10);

}  // namespace loopstall
