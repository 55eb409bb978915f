#include "loopstall/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string_view>

#include "loopstall/printable.hpp"

namespace loopstall {

void Metrics::declare(const std::string& name, const std::string& help, prometheus::MetricType type) {
  std::lock_guard<std::mutex> lock(mu_);
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  declared_.push_back(std::move(f));
}

prometheus::Family<prometheus::Counter>& Metrics::counter(const std::string& name, const std::string& help) {
  declare(name, help, prometheus::MetricType::Counter);
  return prometheus::BuildCounter().Name(name).Help(help).Register(reg_);
}

prometheus::Family<prometheus::Gauge>& Metrics::gauge(const std::string& name, const std::string& help) {
  declare(name, help, prometheus::MetricType::Gauge);
  return prometheus::BuildGauge().Name(name).Help(help).Register(reg_);
}

prometheus::Family<prometheus::Histogram>& Metrics::histogram(const std::string& name, const std::string& help) {
  declare(name, help, prometheus::MetricType::Histogram);
  return prometheus::BuildHistogram().Name(name).Help(help).Register(reg_);
}

std::string Metrics::render() const {
  std::vector<prometheus::MetricFamily> families = reg_.Collect();
  for (auto& f : families)
    std::sort(f.metric.begin(), f.metric.end(),
              [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) { return a.label < b.label; });
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (families.size() < declared_.size()) {
      // `collected` views the names in `families`: no reallocation below.
      families.reserve(declared_.size());
      std::set<std::string_view> collected;
      for (const auto& f : families) collected.insert(f.name);
      for (const auto& f : declared_)
        if (!collected.count(f.name)) families.push_back(f);
    }
  }
  std::sort(families.begin(), families.end(),
            [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) { return a.name < b.name; });
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

prometheus::Labels labels(std::initializer_list<std::pair<const char*, std::string>> kv) {
  prometheus::Labels out;
  for (const auto& [k, v] : kv) out.emplace(k, valid_utf8(v));
  return out;
}

void advance_to(prometheus::Counter& c, double total) {
  const double now = c.Value();
  if (total > now) c.Increment(total - now);
}

}  // namespace loopstall
