#include "loopstall/alerts.hpp"

#include <httplib.h>

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "loopstall/clock.hpp"
#include "loopstall/printable.hpp"

namespace loopstall {
namespace {

std::string rfc3339(std::int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1'000'000'000LL);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>((unix_ns / 1'000'000LL) % 1000));
  return out;
}

std::string fmt_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  return buf;
}

// logfmt value quoting; service and culprit names come from the process,
// so control characters are escaped (printable() also doubles backslashes).
std::string q(const std::string& v) {
  std::string out = "\"";
  for (char c : printable(v)) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string Alert::key() const {
  std::string k;
  for (const auto& [n, v] : labels) k += n + "=" + v + ";";
  return k;
}

std::string alertmanager_payload(const std::vector<Alert>& alerts) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& a : alerts) {
    nlohmann::json j;
    j["labels"] = a.labels;
    j["annotations"] = a.annotations;
    j["startsAt"] = rfc3339(a.starts_unix_ns);
    j["endsAt"] = rfc3339(a.ends_unix_ns);
    j["generatorURL"] = "loopstalld://" + a.labels.at("alertname");
    arr.push_back(std::move(j));
  }
  return arr.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

AlertSender::AlertSender(std::string url, int timeout_ms) : url_(std::move(url)), timeout_ms_(timeout_ms) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  thread_ = std::thread([this] { run(); });
}

AlertSender::~AlertSender() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void AlertSender::send(const std::vector<Alert>& alerts) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& a : alerts) pending_[a.key()] = a;
  }
  cv_.notify_all();
}

void AlertSender::run() {
  int backoff_ms = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (backoff_ms)
      cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return stop_; });
    else
      cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (pending_.empty()) {
      if (stop_) return;
      backoff_ms = 0;
      continue;
    }
    std::vector<Alert> batch;
    for (auto& [k, a] : pending_) batch.push_back(a);
    lock.unlock();
    bool ok = false;
    {
      httplib::Client cli(url_);
      const auto t = std::chrono::milliseconds(timeout_ms_);
      cli.set_connection_timeout(t);
      cli.set_read_timeout(t);
      cli.set_write_timeout(t);
      auto res = cli.Post("/api/v2/alerts", alertmanager_payload(batch), "application/json");
      ok = res && res->status >= 200 && res->status < 300;
    }
    lock.lock();
    if (ok) {
      ++ok_;
      // Drop what was sent unless a newer state arrived meanwhile.
      for (const auto& a : batch) {
        auto it = pending_.find(a.key());
        if (it != pending_.end() && it->second.ends_unix_ns == a.ends_unix_ns && it->second.resolved == a.resolved)
          pending_.erase(it);
      }
      backoff_ms = 0;
    } else {
      ++failed_;
      if (stop_) return;  // do not hold shutdown for an unreachable receiver
      backoff_ms = std::min(backoff_ms ? backoff_ms * 2 : 500, 30'000);
    }
  }
}

AlertEngine::AlertEngine(std::vector<AlertRule> rules, AlertSender* sender, std::FILE* log, WallClock clock,
                         std::map<std::string, std::string> labels)
    : rules_(std::move(rules)), labels_(std::move(labels)), sender_(sender), log_(log), clock_(clock) {}

void AlertEngine::log_line(const Alert& a) {
  if (!log_) return;
  std::string line = std::string("loopstalld: alert ") + (a.resolved ? "resolved" : "firing");
  for (const auto& [k, v] : a.labels) line += " " + k + "=" + q(v);
  auto it = a.annotations.find("summary");
  if (it != a.annotations.end()) line += " summary=" + q(it->second);
  std::fprintf(log_, "%s\n", line.c_str());
  std::fflush(log_);
}

void AlertEngine::deliver(const Alert& a) {
  log_line(a);
  if (sender_) sender_->send({a});
}

void AlertEngine::fire(const AlertRule& rule, std::map<std::string, std::string> labels,
                       std::map<std::string, std::string> annotations, std::int64_t starts_unix_ns,
                       std::uint64_t now_ns, std::uint64_t hold_ns, bool update_annotations) {
  for (const auto& [k, v] : rule.labels) labels.emplace(k, v);
  for (const auto& [k, v] : labels_) labels.emplace(k, v);
  labels["alertname"] = rule.name;
  labels["severity"] = rule.severity;
  Alert a;
  a.labels = std::move(labels);
  a.annotations = std::move(annotations);
  a.starts_unix_ns = starts_unix_ns;
  const std::string key = a.key();
  auto it = active_.find(key);
  if (it != active_.end()) {  // already firing: keep its start, refresh
    Active& act = it->second;
    act.last_seen_ns = now_ns;
    if (hold_ns) {
      act.expires_ns = now_ns + hold_ns;
      act.alert.ends_unix_ns = clock_.to_unix_ns(act.expires_ns);
    }
    if (update_annotations && act.alert.annotations != a.annotations) {
      // The latest stall: Alertmanager keeps one alert and shows this.
      act.alert.annotations = std::move(a.annotations);
      act.last_sent_ns = now_ns;
      ++updates_;
      if (sender_) sender_->send({act.alert});
    }
    return;
  }
  Active act;
  act.fired_ns = act.last_sent_ns = act.last_seen_ns = now_ns;
  act.expires_ns = hold_ns ? now_ns + hold_ns : 0;
  a.ends_unix_ns = clock_.to_unix_ns(hold_ns ? now_ns + hold_ns : now_ns + 4 * kResendNs);
  act.alert = a;
  active_.emplace(key, act);
  deliver(a);
}

void AlertEngine::resolve(const std::string& key, std::uint64_t now_ns) {
  auto it = active_.find(key);
  if (it == active_.end()) return;
  Alert a = it->second.alert;
  a.resolved = true;
  a.ends_unix_ns = clock_.to_unix_ns(now_ns);
  active_.erase(it);
  deliver(a);
}

void AlertEngine::stall(const StallReport& r) {
  const std::uint64_t now = monotonic_ns();
  // service_name()'s value, as in events and metrics ("" when no rule
  // named the process: one alert for all such processes).
  const std::string& svc = r.service;
  for (const AlertRule& rule : rules_) {
    if (rule.kind == AlertRule::Kind::Stall && r.duration_ms >= rule.stall_ms) {
      // One alert per service; an ongoing report that crossed the line fires
      // it early, and each later report (this stall's or another's) makes it
      // describe the latest stall and holds it longer.
      char ms[32];
      std::snprintf(ms, sizeof ms, "%.1f", r.duration_ms);
      fire(rule, {{"service", svc}},
           {{"summary", "event loop of " + svc + " (pid " + std::to_string(r.pid) + ") stalled " +
                            fmt_ms(r.duration_ms) + (r.ongoing ? " so far" : "") + ": " + culprit_summary(r)},
            {"pid", std::to_string(r.pid)},
            {"stall_id", r.stall_id},
            {"duration_ms", ms}},
           r.start_unix_ns, now, kStallAlertHoldNs, true);
    } else if (rule.kind == AlertRule::Kind::Frequent && !r.ongoing && r.duration_ms >= rule.min_ms) {
      auto& w = windows_[{rule.name, svc}];
      w.push_back(now);
      const auto window_ns = static_cast<std::uint64_t>(rule.window_s * 1e9);
      while (!w.empty() && now - w.front() > window_ns) w.pop_front();
      if (w.size() >= rule.stalls)
        fire(rule, {{"service", svc}},
             {{"summary", std::to_string(rule.stalls) + " or more stalls >= " + fmt_ms(rule.min_ms) + " in " + svc +
                              " within " + std::to_string(static_cast<int>(rule.window_s)) + " s"},
              {"stall_id", r.stall_id}},
             clock_.to_unix_ns(now), now, 0, false);
    }
  }
}

void AlertEngine::health(const Health& h) {
  const std::uint64_t now_ns = h.now_ns;
  for (const AlertRule& rule : rules_) {
    if (rule.kind != AlertRule::Kind::Hung) continue;
    const auto hung_ns = static_cast<std::uint64_t>(rule.hung_s * 1e9);
    for (const LoopInIteration& l : h.in_iteration) {
      if (now_ns < l.iter_start_ns || now_ns - l.iter_start_ns < hung_ns) continue;
      // One alert per service, however many of its loops hang; the first
      // one found describes it.
      fire(rule, {{"service", l.service}},
           {{"summary", "event loop of " + l.service + " (pid " + std::to_string(l.pid) + ", tid " +
                            std::to_string(l.tid) + ") has not returned since it started hanging"},
            {"pid", std::to_string(l.pid)},
            {"tid", std::to_string(l.tid)}},
           clock_.to_unix_ns(l.iter_start_ns), now_ns, 0, false);
    }
  }
  // Every frequent-stall window slides, not only those of firing alerts: a
  // service that stalled fewer times than the rule needs and is then gone
  // (a name per process) must not stay for good. Empty ones are forgotten.
  for (auto it = windows_.begin(); it != windows_.end();) {
    const auto rule =
        std::find_if(rules_.begin(), rules_.end(), [&](const AlertRule& r) { return r.name == it->first.first; });
    auto& w = it->second;
    if (rule != rules_.end()) {
      const auto window_ns = static_cast<std::uint64_t>(rule->window_s * 1e9);
      while (!w.empty() && now_ns > w.front() && now_ns - w.front() > window_ns) w.pop_front();
    }
    it = w.empty() || rule == rules_.end() ? windows_.erase(it) : std::next(it);
  }
  // Clear what no longer holds: hung loops that returned (not seen in this
  // scan), frequent-stall windows that emptied, expired stall events.
  std::vector<std::string> done, expired;
  for (auto& [key, act] : active_) {
    const std::string& name = act.alert.labels.at("alertname");
    auto rule = std::find_if(rules_.begin(), rules_.end(), [&](const AlertRule& r) { return r.name == name; });
    if (rule == rules_.end()) {
      done.push_back(key);
    } else if (rule->kind == AlertRule::Kind::Hung) {
      if (act.last_seen_ns != now_ns) done.push_back(key);
    } else if (rule->kind == AlertRule::Kind::Frequent) {
      const auto w = windows_.find({rule->name, act.alert.labels.at("service")});
      if (w == windows_.end() || w->second.size() < rule->stalls) done.push_back(key);
    } else if (act.expires_ns && now_ns >= act.expires_ns) {
      expired.push_back(key);  // Alertmanager resolves it by its endsAt
    }
  }
  for (const auto& k : expired) active_.erase(k);
  for (const auto& k : done) resolve(k, now_ns);
  // Keep Alertmanager's copy alive while firing.
  for (auto& [key, act] : active_) {
    if (act.expires_ns || now_ns - act.last_sent_ns < kResendNs) continue;
    act.last_sent_ns = now_ns;
    act.alert.ends_unix_ns = clock_.to_unix_ns(now_ns + 4 * kResendNs);
    if (sender_) sender_->send({act.alert});
  }
}

void AlertEngine::set_rules(std::vector<AlertRule> rules, std::uint64_t now_ns) {
  rules_ = std::move(rules);
  windows_.clear();
  std::vector<std::string> gone;
  for (const auto& [key, act] : active_) {
    const std::string& name = act.alert.labels.at("alertname");
    if (std::none_of(rules_.begin(), rules_.end(), [&](const AlertRule& r) { return r.name == name; }))
      gone.push_back(key);
  }
  for (const auto& k : gone) resolve(k, now_ns);
}

std::map<std::string, int> AlertEngine::firing_counts() const {
  std::map<std::string, int> out;
  for (const AlertRule& r : rules_) out[r.name] = 0;
  for (const auto& [key, act] : active_) out[act.alert.labels.at("alertname")]++;
  return out;
}

}  // namespace loopstall
