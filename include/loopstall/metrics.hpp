// The daemon's Prometheus registry: prometheus-cpp's families (counters,
// gauges, histograms) and its text serializer (exposition format 0.0.4).
// Thread-safe: the HTTP thread renders while the detector thread updates.
#pragma once

#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace loopstall {

class Metrics {
 public:
  prometheus::Family<prometheus::Counter>& counter(const std::string& name, const std::string& help);
  prometheus::Family<prometheus::Gauge>& gauge(const std::string& name, const std::string& help);
  prometheus::Family<prometheus::Histogram>& histogram(const std::string& name, const std::string& help);
  // Every family, sorted by name, its series by labels; a family with no
  // series yet is still there with its HELP and TYPE (as a dashboard's or a
  // rule's author reads them), which prometheus-cpp alone leaves out.
  std::string render() const;

 private:
  void declare(const std::string& name, const std::string& help, prometheus::MetricType type);
  prometheus::Registry reg_;
  mutable std::mutex mu_;  // guards declared_
  std::vector<prometheus::MetricFamily> declared_;
};

// Labels whose values are valid UTF-8 whatever the bytes given: a service
// name comes from another process, and one bad byte makes Prometheus reject
// the whole scrape.
prometheus::Labels labels(std::initializer_list<std::pair<const char*, std::string>> kv);

// A counter that mirrors a cumulative count kept elsewhere (BPF, the
// correlator): moved up to `total` (counters never go down).
void advance_to(prometheus::Counter& c, double total);

}  // namespace loopstall
