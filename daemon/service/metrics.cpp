#include "loopstall/metrics.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "loopstall/printable.hpp"

namespace loopstall {
namespace {

std::string fmt_double(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  // Shortest text that reads back as the same double: "0.0025", "10", not
  // "0.0025000000000000001" or "1e+01" (bucket bounds must read like config).
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

void render_labels(std::string& out, const std::vector<std::string>& names, const LabelValues& values,
                   const char* extra_name = nullptr, const std::string& extra_value = "") {
  if (names.empty() && !extra_name) return;
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i] + "=\"" + escape_label_value(values[i]) + '"';
  }
  if (extra_name) {
    if (!first) out += ',';
    out += std::string(extra_name) + "=\"" + extra_value + '"';
  }
  out += '}';
}

}  // namespace

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : valid_utf8(v)) {  // comm is a label value: any user can make it invalid UTF-8
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

MetricFamily::MetricFamily(std::string name, std::string help, Type type, std::vector<std::string> label_names,
                           std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

void MetricFamily::add(const LabelValues& labels, double v) {
  series_[labels].value += v;
}
void MetricFamily::set(const LabelValues& labels, double v) {
  series_[labels].value = v;
}

double MetricFamily::value(const LabelValues& labels) const {
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.value;
}

void MetricFamily::observe(const LabelValues& labels, double v) {
  observe_n(labels, v, 1);
}

void MetricFamily::observe_n(const LabelValues& labels, double v, std::uint64_t n) {
  Series& s = series_[labels];
  if (s.bucket_counts.empty()) s.bucket_counts.assign(buckets_.size(), 0);
  for (std::size_t i = 0; i < buckets_.size(); ++i)
    if (v <= buckets_[i]) {
      s.bucket_counts[i] += n;
      break;
    }
  s.count += n;
  s.sum += v * static_cast<double>(n);
}

void MetricFamily::render(std::string& out) const {
  static const char* kTypes[] = {"counter", "gauge", "histogram"};
  out += "# HELP " + name_ + " " + help_ + "\n";
  out += "# TYPE " + name_ + " " + kTypes[static_cast<int>(type_)] + "\n";
  for (const auto& [labels, s] : series_) {
    if (type_ != Type::Histogram) {
      out += name_;
      render_labels(out, label_names_, labels);
      out += ' ' + fmt_double(s.value) + '\n';
      continue;
    }
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      cum += i < s.bucket_counts.size() ? s.bucket_counts[i] : 0;
      out += name_ + "_bucket";
      render_labels(out, label_names_, labels, "le", fmt_double(buckets_[i]));
      out += ' ' + std::to_string(cum) + '\n';
    }
    out += name_ + "_bucket";
    render_labels(out, label_names_, labels, "le", "+Inf");
    out += ' ' + std::to_string(s.count) + '\n';
    out += name_ + "_sum";
    render_labels(out, label_names_, labels);
    out += ' ' + fmt_double(s.sum) + '\n';
    out += name_ + "_count";
    render_labels(out, label_names_, labels);
    out += ' ' + std::to_string(s.count) + '\n';
  }
}

MetricFamily& Registry::family(const std::string& name, const std::string& help, MetricFamily::Type t,
                               std::vector<std::string> labels, std::vector<double> buckets) {
  auto it = families_.find(name);
  if (it != families_.end()) return it->second;
  return families_.emplace(name, MetricFamily(name, help, t, std::move(labels), std::move(buckets))).first->second;
}

MetricFamily& Registry::counter(const std::string& name, const std::string& help, std::vector<std::string> labels) {
  return family(name, help, MetricFamily::Type::Counter, std::move(labels), {});
}
MetricFamily& Registry::gauge(const std::string& name, const std::string& help, std::vector<std::string> labels) {
  return family(name, help, MetricFamily::Type::Gauge, std::move(labels), {});
}
MetricFamily& Registry::histogram(const std::string& name, const std::string& help, std::vector<std::string> labels,
                                  std::vector<double> buckets) {
  return family(name, help, MetricFamily::Type::Histogram, std::move(labels), std::move(buckets));
}

std::string Registry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) f.render(out);
  return out;
}

}  // namespace loopstall
