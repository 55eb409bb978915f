// Loop health between stalls (issue 13): utilisation, churn, iteration
// rate and latency per watched process, as `loopstall top` shows them. The
// counters are the correlator's per-process totals (Summary); the rates are
// their change between two snapshots, computed by whoever shows them (each
// `top` client on its own), so the daemon keeps no per-viewer state.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loopstall/sink.hpp"

namespace loopstall {

// A Summary as the control socket's "loops" reply carries it, and back.
// from_json throws std::invalid_argument on anything malformed.
nlohmann::json summary_to_json(const Summary& s);
Summary summary_from_json(const nlohmann::json& j);

// One row of `loopstall top`: a watched process over the last interval.
struct LoopRow {
  std::uint32_t pid = 0;
  std::string service;  // service, else comm
  LoopKind loop = LoopKind::Epoll;
  double iterations_per_s = 0;
  double utilisation = 0;                        // share of wall time inside iterations, per loop thread (0..1)
  double on_cpu = 0, blocked = 0, runqueue = 0;  // utilisation by state
  std::optional<double> p99_ms;                  // none without iterations in the interval
  double stalls_per_min = 0;
  std::optional<double> reads_per_iteration;  // churn; none without iterations
  std::optional<double> bytes_per_read;       // none without reads
  double reads_per_s = 0;
  std::optional<OngoingStall> ongoing;
  // Many tiny reads: a loop spending its iterations on a few bytes each
  // (kChurnReadsPerS reads/s or more, returning kChurnBytesPerRead or fewer).
  bool churning() const { return reads_per_s >= kChurnReadsPerS && bytes_per_read.value_or(1e9) <= kChurnBytesPerRead; }
  static constexpr double kChurnReadsPerS = 1000, kChurnBytesPerRead = 64;
  static constexpr double kSaturated = 0.9;  // utilisation shown as SATURATED
};

enum class TopSort { Utilisation, Iterations, P99, Stalls, Churn, Pid };
std::optional<TopSort> parse_top_sort(std::string_view name);
std::string_view to_string(TopSort s);
TopSort next_sort(TopSort s);

// Turns successive snapshots into rows. Stall rates look back one minute.
class LoopRates {
 public:
  // `now_s`: the caller's monotonic clock, seconds.
  std::vector<LoopRow> update(const Summary& s, double now_s);

 private:
  struct Seen {
    ProcessTotals totals;
    double at_s = 0;
    std::deque<std::pair<double, std::uint64_t>> stalls;  // (time, stalls so far), last minute
  };
  std::map<std::uint32_t, Seen> seen_;
};

void sort_rows(std::vector<LoopRow>& rows, TopSort by);
// The table `top` draws: a header line, then one line per row, each at most
// `width` columns.
std::vector<std::string> format_rows(const std::vector<LoopRow>& rows, TopSort by, int width);

}  // namespace loopstall
