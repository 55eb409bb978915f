// Threshold alerts from the config's rules, delivered as structured lines to
// stderr (the journal under systemd) and, when configured, to Alertmanager's
// v2 API from a background thread that never blocks the event path.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loopstall/alert_rule.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/sink.hpp"

namespace loopstall {

struct Alert {
  std::map<std::string, std::string> labels;  // includes alertname
  std::map<std::string, std::string> annotations;
  std::int64_t starts_unix_ns = 0;
  std::int64_t ends_unix_ns = 0;  // when Alertmanager should consider it over
  bool resolved = false;
  std::string key() const;  // identity: the labels
};

// Alertmanager v2 JSON for a batch (POST /api/v2/alerts).
std::string alertmanager_payload(const std::vector<Alert>& alerts);

// Delivers to Alertmanager with retry and backoff. Keeps only the latest
// state of each alert while the receiver is down, so memory stays bounded.
class AlertSender {
 public:
  AlertSender(std::string url, int timeout_ms);
  ~AlertSender();
  void send(const std::vector<Alert>& alerts);  // never blocks on the network
  std::uint64_t delivered() const { return ok_; }
  std::uint64_t failed() const { return failed_; }

 private:
  void run();
  std::string url_;
  int timeout_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Alert> pending_;
  bool stop_ = false;
  std::atomic<std::uint64_t> ok_{0}, failed_{0};  // read by the metrics sink's thread
  std::thread thread_;
};

class AlertEngine : public Sink {
 public:
  // Firing alerts are sent again this often (Alertmanager forgets alerts
  // whose endsAt passed: kResendNs * 4 from the last send).
  static constexpr std::uint64_t kResendNs = 30'000'000'000ULL;
  // A single-stall alert is an event: it resolves by itself after this.
  static constexpr std::uint64_t kStallAlertHoldNs = 300'000'000'000ULL;

  // An alert is keyed by (rule, service) plus `labels` (the host's
  // "instance" and the operator's external labels): N stalls of one service
  // are one alert, whose annotations describe the latest.
  AlertEngine(std::vector<AlertRule> rules, AlertSender* sender, std::FILE* log, WallClock clock = {},
              std::map<std::string, std::string> labels = {});
  void stall(const StallReport& r) override;
  // Hung-loop rules (loops in an iteration at this snapshot), window
  // expiry, resends; the app pushes one after each scan.
  void health(const Health& h) override;
  // New rules (SIGHUP): alerts of rules that are gone are resolved.
  void set_rules(std::vector<AlertRule> rules, std::uint64_t now_ns);
  // New external labels (SIGHUP): alerts keep the labels they fired with.
  void set_labels(std::map<std::string, std::string> labels) { labels_ = std::move(labels); }
  // Deliveries of new annotations to an alert already firing (a later stall
  // of the same service), for tests and status.
  std::uint64_t updates() const { return updates_; }
  // Firing alerts by rule name.
  std::map<std::string, int> firing_counts() const;
  // (rule, service) pairs of frequent-stall rules with stalls in their window.
  std::size_t windows_followed() const { return windows_.size(); }

 private:
  struct Active {
    Alert alert;
    std::uint64_t fired_ns = 0, last_sent_ns = 0, last_seen_ns = 0;
    std::uint64_t expires_ns = 0;  // 0: until the condition clears
  };
  void fire(const AlertRule& rule, std::map<std::string, std::string> labels,
            std::map<std::string, std::string> annotations, std::int64_t starts_unix_ns, std::uint64_t now_ns,
            std::uint64_t hold_ns, bool update_annotations);
  void resolve(const std::string& key, std::uint64_t now_ns);
  void deliver(const Alert& a);
  void log_line(const Alert& a);

  std::vector<AlertRule> rules_;
  std::map<std::string, std::string> labels_;
  std::uint64_t updates_ = 0;
  AlertSender* sender_;
  std::FILE* log_;
  WallClock clock_;
  std::map<std::string, Active> active_;  // by Alert::key()
  // Frequent rules: stall end times per (rule, service).
  std::map<std::pair<std::string, std::string>, std::deque<std::uint64_t>> windows_;
};

}  // namespace loopstall
