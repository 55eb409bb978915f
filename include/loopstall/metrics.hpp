// A small Prometheus registry: counter, gauge and histogram families with
// labels, rendered in the text exposition format (0.0.4). Debian 12 ships
// no C++ Prometheus client, and we need only this much.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace loopstall {

using LabelValues = std::vector<std::string>;

class MetricFamily {
 public:
  enum class Type { Counter, Gauge, Histogram };
  MetricFamily(std::string name, std::string help, Type type, std::vector<std::string> label_names,
               std::vector<double> buckets = {});

  void add(const LabelValues& labels, double v);                         // counter/gauge
  void set(const LabelValues& labels, double v);                         // gauge
  void observe(const LabelValues& labels, double v);                     // histogram
  void observe_n(const LabelValues& labels, double v, std::uint64_t n);  // n observations of v
  void clear() { series_.clear(); }
  double value(const LabelValues& labels) const;  // counter/gauge; 0 when absent
  void render(std::string& out) const;
  const std::string& name() const { return name_; }

 private:
  struct Series {
    double value = 0;
    std::vector<std::uint64_t> bucket_counts;  // cumulative at render time
    std::uint64_t count = 0;
    double sum = 0;
  };
  std::string name_, help_;
  Type type_;
  std::vector<std::string> label_names_;
  std::vector<double> buckets_;
  std::map<LabelValues, Series> series_;
};

// Families by name; render() and mutations are serialized by one mutex
// (the HTTP thread renders while the detector thread updates).
class Registry {
 public:
  MetricFamily& counter(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  MetricFamily& gauge(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  MetricFamily& histogram(const std::string& name, const std::string& help, std::vector<std::string> labels,
                          std::vector<double> buckets);
  std::string render() const;
  std::mutex& mutex() const { return mu_; }

 private:
  MetricFamily& family(const std::string& name, const std::string& help, MetricFamily::Type t,
                       std::vector<std::string> labels, std::vector<double> buckets);
  mutable std::mutex mu_;
  std::map<std::string, MetricFamily> families_;
};

// Escapes a label value for the exposition format.
std::string escape_label_value(const std::string& v);

}  // namespace loopstall
