// The daemon's Prometheus series (names fixed by contract/CONTRACT.md, plus
// what an SRE needs). Fed as a Sink by the correlator and refreshed from
// detector state once per scan.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "loopstall/correlator.hpp"
#include "loopstall/detector.hpp"
#include "loopstall/metrics.hpp"
#include "loopstall/sink.hpp"

namespace loopstall {

// Stall duration buckets: 1 ms ... 30 s.
inline const std::vector<double> kStallBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,    1,     2.5,  5,     10,   30};

// Iteration duration buckets: powers of 4 microseconds, 1 us ... 67 s (each
// the upper bound of a log2 bucket of the BPF histogram, so no data is
// split between buckets).
inline const std::vector<double> kIterationBuckets = {1e-6,     4e-6,     16e-6,     64e-6,     256e-6,
                                                      1.024e-3, 4.096e-3, 16.384e-3, 65.536e-3, 0.262144,
                                                      1.048576, 4.194304, 16.777216, 67.108864};

// Keeps the `service` label bounded: the first max distinct values pass,
// later ones become "other".
class ServiceLabels {
 public:
  explicit ServiceLabels(std::size_t max) : max_(max) {}
  std::string operator()(const std::string& service);
  void set_max(std::size_t max) { max_ = max; }

 private:
  std::size_t max_;
  std::set<std::string> seen_;
};

struct DaemonState {
  std::uint64_t attach_failures = 0;
  std::uint64_t alerts_sent_ok = 0;
  std::uint64_t alerts_send_failed = 0;
};

class StallMetrics : public Sink {
 public:
  StallMetrics(Registry& reg, std::size_t max_services, const std::string& version);
  void stall(const StallReport& r) override;
  void iterations(std::uint32_t pid, const std::string& service, const IterationDelta& d) override;
  // Gauges and BPF counters; call after each scan.
  void refresh(Detector& det, const Correlator& corr);
  void set_max_services(std::size_t max) { services_.set_max(max); }
  // Records an output (the event log) did not take: it did not keep up, or
  // writing failed (disk full).
  void set_output_dropped(const std::string& output, std::uint64_t not_keeping_up, std::uint64_t write_errors);

 private:
  Registry& reg_;
  ServiceLabels services_;
};

// process_* series of this process (CPU, memory, fds, start time).
void refresh_process_metrics(Registry& reg);

}  // namespace loopstall
