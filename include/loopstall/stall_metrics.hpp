// The daemon's Prometheus series (names fixed by docs/contract/CONTRACT.md, plus
// what an SRE needs): a sink fed with stall reports and iteration counts by
// the correlator and with the health snapshot by the app.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "loopstall/alerts.hpp"
#include "loopstall/event_coalescer.hpp"
#include "loopstall/json_sink.hpp"
#include "loopstall/metrics.hpp"
#include "loopstall/output.hpp"
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
// later ones become "other". Values are made valid UTF-8 first.
class ServiceLabels {
 public:
  explicit ServiceLabels(std::size_t max) : max_(max) {}
  std::string operator()(const std::string& service);
  void set_max(std::size_t max) { max_ = max; }

 private:
  std::size_t max_;
  std::set<std::string> seen_;
};

class StallMetrics : public Sink {
 public:
  // Services whose series are looked up by their raw name without a label
  // lookup (iterations() runs for every loop after every scan): at most
  // this many, as many as the BPF map has loop threads.
  static constexpr std::size_t kMaxCachedServices = 4096;

  StallMetrics(Metrics& m, std::size_t max_services, const std::string& version);
  ~StallMetrics() override;
  void stall(const StallReport& r) override;
  void iterations(std::uint32_t pid, const std::string& service, const IterationDelta& d) override;
  // Gauges and mirrored counters: loops, stalls in progress, BPF, this
  // process, and the outputs watched below.
  void health(const Health& h) override;
  void set_max_services(std::size_t max);
  std::size_t services_cached() const { return per_service_.size(); }
  // Other outputs whose own state is exported: the alert sink (alerts
  // firing by rule, deliveries) and output queues (records dropped). Not
  // owned; they must outlive this sink.
  void watch_alerts(const AlertEngine& alerts, const AlertSender* sender);
  void watch_output(const std::string& name, const OutputQueue& q);
  void watch_coalescer(const EventCoalescer& c) { coalescer_ = &c; }
  void watch_event_log(const JsonLinesSink& s) { event_log_ = &s; }

 private:
  using Counter = prometheus::Counter;
  using Gauge = prometheus::Gauge;
  using Histogram = prometheus::Histogram;
  template <typename T>
  using Family = prometheus::Family<T>;
  // The series the correlator updates after every scan, by the process's
  // service as it gave it (not yet bounded nor made valid UTF-8).
  struct PerService {
    Counter* iterations = nullptr;
    Histogram* iteration_durations = nullptr;
    Counter* busy_on_cpu = nullptr;  // loop health: utilisation by state, churn
    Counter* busy_blocked = nullptr;
    Counter* busy_runq = nullptr;
    Counter* reads = nullptr;
    Counter* read_bytes = nullptr;
  };
  // Series with fixed labels, made at the first health snapshot (not
  // exported as zeros before anything was measured).
  struct Fixed;
  PerService& per_service(const std::string& service);
  void export_alerts();

  ServiceLabels services_;
  std::unordered_map<std::string, PerService> per_service_;
  std::vector<double> increments_;  // iterations(): per iteration bucket
  Family<Counter>& stalls_;
  Family<Histogram>& stall_durations_;
  Family<Counter>& stall_time_;
  Family<Counter>& blocked_;
  Family<Counter>& iterations_;
  Family<Histogram>& iteration_durations_;
  Family<Counter>& busy_;
  Family<Counter>& reads_;
  Family<Counter>& read_bytes_;
  Family<Gauge>& monitored_;
  Family<Gauge>& loops_;
  Family<Gauge>& service_loops_;
  Family<Gauge>& ongoing_;
  Family<Gauge>& longest_ongoing_;
  Family<Gauge>& watched_;
  Family<Counter>& lost_;
  Family<Counter>& map_full_;
  Family<Gauge>& map_entries_;
  Family<Counter>& bpf_iterations_;
  Family<Counter>& bpf_samples_;
  Family<Counter>& bpf_samples_skipped_;
  Family<Counter>& over_budget_;
  Family<Counter>& stack_skipped_;
  Family<Counter>& coalesced_;
  Family<Counter>& summaries_;
  Family<Counter>& ongoing_withheld_;
  Family<Counter>& coalescer_full_;
  Family<Counter>& stacks_omitted_;
  Family<Counter>& state_repairs_;
  Family<Gauge>& alerts_firing_;
  Family<Counter>& deliveries_;
  Family<Counter>& output_dropped_;
  Family<Counter>& attach_failures_;
  Family<Gauge>& bpf_stats_enabled_;
  Family<Counter>& program_runs_;
  Family<Counter>& program_seconds_;
  Family<Counter>& process_cpu_;
  Family<Gauge>& process_rss_;
  Family<Gauge>& process_start_;
  Family<Gauge>& process_fds_;
  std::unique_ptr<Fixed> fixed_;
  std::uint64_t counters_seen_ns_ = 0;  // Health::counters_read_ns last exported
  const AlertEngine* alerts_ = nullptr;
  const AlertSender* sender_ = nullptr;
  std::map<std::string, Gauge*> service_loops_by_label_;  // a service gone stays, at 0
  std::map<std::string, Gauge*> firing_;                  // by rule: rules gone on reload lose their series
  std::vector<std::pair<std::string, const OutputQueue*>> outputs_;
  const EventCoalescer* coalescer_ = nullptr;
  const JsonLinesSink* event_log_ = nullptr;
};

}  // namespace loopstall
