#include "loopstall/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>
#include <sstream>

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
  std::map<std::string, prometheus::MetricFamily> by_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& f : declared_) by_name.emplace(f.name, f);
  }
  for (auto& f : reg_.Collect()) {
    std::sort(f.metric.begin(), f.metric.end(),
              [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) { return a.label < b.label; });
    by_name[f.name] = std::move(f);
  }
  std::vector<prometheus::MetricFamily> families;
  families.reserve(by_name.size());
  for (auto& [name, f] : by_name) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
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
