#include "loopstall/daemon.hpp"

#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <map>
#include <memory>

#include "loopstall/alerts.hpp"
#include "loopstall/capture_session.hpp"
#include "loopstall/cli_common.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/control_server.hpp"
#include "loopstall/detector.hpp"
#include "loopstall/event_coalescer.hpp"
#include "loopstall/health_probe.hpp"
#include "loopstall/http_server.hpp"
#include "loopstall/json_sink.hpp"
#include "loopstall/loop_health.hpp"
#include "loopstall/notify.hpp"
#include "loopstall/output.hpp"
#include "loopstall/stall_metrics.hpp"

namespace loopstall {
namespace {

Selection selection_of(const Config& c) {
  Selection s;
  s.all_loops = c.all_loops;
  auto cfg = std::make_shared<Config>(c);
  s.accept = [cfg](const ProcInfo& p) { return cfg->accepts(p); };
  s.naming = std::shared_ptr<const ServiceNaming>(cfg, &cfg->naming);
  return s;
}

// Labels on every alert: the operator's, and the host as "instance" unless
// they name it otherwise.
std::map<std::string, std::string> alert_labels(const Config& c) {
  auto labels = c.alert_labels;
  if (!labels.count("instance")) {
    char host[HOST_NAME_MAX + 1] = {};
    if (gethostname(host, sizeof host - 1) == 0 && host[0]) labels["instance"] = host;
  }
  return labels;
}

// The daemon's parts, in the order they start (and the reverse of the
// order they stop).
class Daemon {
 public:
  Daemon(const DaemonFlags& flags, const EngineFactory& make);
  int run(const std::atomic<bool>& stop, std::atomic<bool>& reload_asked);

 private:
  nlohmann::json status();
  void reload(std::uint64_t now);

  const DaemonFlags& flags_;
  Config cfg_;
  const std::uint64_t started_ = monotonic_ns();
  std::atomic<std::uint64_t> last_step_{started_};
  // Detection never waits on the event log: a bounded queue, a writer thread.
  std::unique_ptr<OutputQueue> events_;
  Metrics reg_;
  StallMetrics metrics_;
  std::unique_ptr<AlertSender> sender_;
  AlertEngine alerts_;
  StallCounter counter_;
  std::unique_ptr<JsonLinesSink> event_log_;
  // In front of the event log only: metrics and alerts see every report.
  std::unique_ptr<EventCoalescer> coalescer_;
  FanoutSink fan_;
  std::pair<std::string, int> listen_at_;
  std::unique_ptr<MetricsServer> http_;
  std::unique_ptr<Detector> det_;
  Selection sel_;
  std::unique_ptr<CaptureSession> watch_;
  std::unique_ptr<HealthProbe> health_;
  std::unique_ptr<ControlServer> control_;
  Notifier notifier_;
};

Daemon::Daemon(const DaemonFlags& flags, const EngineFactory& make)
    : flags_(flags),
      cfg_(effective_config(flags)),
      events_(cfg_.events.empty() ? nullptr : std::make_unique<OutputQueue>(RecordFile::open(cfg_.events, true))),
      metrics_(reg_, cfg_.max_services, LOOPSTALL_VERSION),
      sender_(cfg_.alertmanager_url.empty()
                  ? nullptr
                  : std::make_unique<AlertSender>(cfg_.alertmanager_url, cfg_.alertmanager_timeout_ms)),
      alerts_(cfg_.rules, sender_.get(), stderr, {}, alert_labels(cfg_)) {
  metrics_.watch_alerts(alerts_, sender_.get());
  if (events_) {
    metrics_.watch_output("events", *events_);
    event_log_ = std::make_unique<JsonLinesSink>(events_->writer(), EventLogBudget{cfg_.event_log_bytes_per_s});
    metrics_.watch_event_log(*event_log_);
    coalescer_ = std::make_unique<EventCoalescer>(*event_log_, cfg_.event_coalescing);
    metrics_.watch_coalescer(*coalescer_);
    fan_.add(coalescer_.get());
  }
  fan_.add(&metrics_);
  fan_.add(&alerts_);
  fan_.add(&counter_);

  // The port first: a second daemon on the same port stops here, before it
  // loads any BPF (the listener has no SO_REUSEPORT: scrapes never alternate
  // between two daemons).
  listen_at_ = parse_listen(cfg_.metrics_listen, "metrics_listen");
  http_ = std::make_unique<MetricsServer>(listen_at_.first, listen_at_.second, reg_, [this] {
    // The detector loop wakes at least every 20 ms; 5 s of silence is a hang.
    return monotonic_ns() - last_step_.load() < 5'000'000'000ULL;
  });

  EngineOptions eo;
  eo.tuning = cfg_.tuning();
  det_ = std::make_unique<Detector>(eo, make);
  det_->set_stack_policy(stack_policy(cfg_.event_coalescing));
  // One selection: captures name services with the very rules of the
  // daemon's watch, so they take its names as they are.
  sel_ = selection_of(cfg_);
  watch_ = std::make_unique<CaptureSession>(*det_, sel_, cfg_.threshold_ms, fan_);
  watch_->correlator().keep_exited_totals(false);
  health_ = std::make_unique<HealthProbe>(*det_, watch_->correlator());
  if (!cfg_.control_socket.empty()) {
    control_ = std::make_unique<ControlServer>(cfg_.control_socket, *det_, [this] { return status(); });
    control_->set_naming(sel_.naming);
    // `loopstall top`: the watch's per-process totals; each viewer computes
    // its own rates from two answers.
    control_->set_loops([this] {
      return summary_to_json(watch_->correlator().summary(static_cast<double>(monotonic_ns() - started_) / 1e9));
    });
  }
}

nlohmann::json Daemon::status() {
  const Health& h = health_->take(monotonic_ns(), true);
  std::map<std::string, std::uint64_t> kinds;
  for (LoopKind k : kLoopKinds) kinds[std::string(to_string(k))] = h.loops(k);
  const ControlServer* c = control_.get();
  return {
      {"version", LOOPSTALL_VERSION},
      {"uptime_s", static_cast<double>(monotonic_ns() - started_) / 1e9},
      {"threshold_ms", h.threshold_ms},
      // The kernel reports at the lowest threshold of the daemon and
      // its capture clients; back to threshold_ms when none is left.
      {"kernel_threshold_ms", h.kernel_threshold_ms},
      {"control",
       {{"clients", c ? c->clients() : 0},
        {"captures", c ? c->captures() : 0},
        {"dropped", c ? c->dropped_clients() : 0},
        {"refused", c ? c->refused_clients() : 0}}},
      {"watched_processes", h.watched_processes},
      {"monitored_loops", h.monitored_loops},
      {"loops", kinds},
      {"stalls_total", counter_.stalls()},
      {"ongoing_stalls", h.ongoing_stalls},
      {"lost_events", h.lost_events},
      {"untracked", {{"loops_map_full", h.bpf.loops_full}, {"procs_map_full", h.bpf.procs_full}}},
      {"bpf",
       {{"programs_attached", h.programs_attached},
        {"iterations", h.bpf.iterations},
        {"map_entries",
         {{"loops", h.map_entries.loops}, {"procs", h.map_entries.procs}, {"py_threads", h.map_entries.py_threads}}}}},
      {"alerts_firing", alerts_.firing_counts()},
      {"metrics_listen", listen_at_.first + ":" + std::to_string(http_->port())}};
}

// SIGHUP: a new configuration for what can change without a restart.
void Daemon::reload(std::uint64_t now) {
  notifier_.reloading();
  try {
    Config next = effective_config(flags_);
    Correlator& corr = watch_->correlator();
    const Selection next_sel = selection_of(next);
    corr.set_selection(next_sel);
    corr.set_threshold_ms(next.threshold_ms);
    det_->update_threshold();
    if (next.sample_hz != cfg_.sample_hz) det_->set_sample_period_ns(next.tuning().sample_period_ns());
    det_->reclassify(corr);
    alerts_.set_rules(next.rules, now);
    alerts_.set_labels(alert_labels(next));
    if (control_) control_->set_naming(next_sel.naming);
    metrics_.set_max_services(next.max_services);
    if (next.metrics_listen != cfg_.metrics_listen || next.control_socket != cfg_.control_socket ||
        next.events != cfg_.events || next.alertmanager_url != cfg_.alertmanager_url ||
        next.event_coalescing != cfg_.event_coalescing || next.event_log_bytes_per_s != cfg_.event_log_bytes_per_s)
      std::fprintf(stderr,
                   "loopstalld: reload: listen address, control socket, event log, event coalescing, event log "
                   "budget and Alertmanager URL changes take effect at restart\n");
    cfg_ = std::move(next);
    sel_ = next_sel;
    std::fprintf(stderr, "loopstalld: configuration reloaded (threshold %g ms, %zu alert rules)\n", cfg_.threshold_ms,
                 cfg_.rules.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstalld: reload failed, keeping the old configuration: %s\n", e.what());
  }
  notifier_.ready("configuration reloaded");
}

int Daemon::run(const std::atomic<bool>& stop, std::atomic<bool>& reload_asked) {
  const Correlator& corr = watch_->correlator();
  std::fprintf(stderr,
               "loopstalld: ready: %d BPF programs attached; threshold %g ms; metrics on http://%s:%d/metrics\n",
               det_->engine().attached_programs(), cfg_.threshold_ms, listen_at_.first.c_str(), http_->port());
  notifier_.ready("watching " + std::to_string(corr.watched_processes()) + " Python processes");

  std::uint64_t seen_scans = 0, next_slow = 0;
  while (!stop.load()) {
    det_->step(20);
    const std::uint64_t now = monotonic_ns();
    last_step_.store(now);
    if (control_) control_->poll();
    if (det_->scans() != seen_scans) {  // hung-loop alerts need every scan
      seen_scans = det_->scans();
      fan_.health(health_->take(now));
    }
    if (now >= next_slow) {
      next_slow = now + 1'000'000'000ULL;
      notifier_.status("watching " + std::to_string(corr.watched_processes()) + " processes, " +
                       std::to_string(counter_.stalls()) + " stalls so far");
    }
    notifier_.maybe_ping(now);
    if (reload_asked.exchange(false)) reload(now);
  }
  notifier_.stopping();
  std::fprintf(stderr, "loopstalld: stopping\n");
  control_.reset();
  watch_->stop();
  if (coalescer_) coalescer_->flush();  // the summaries of the windows in progress
  if (events_) events_->close();
  return 0;
}

}  // namespace

Config effective_config(const DaemonFlags& f) {
  Config c = f.config.empty() ? Config{} : load_config(f.config);
  if (f.metrics_listen) c.metrics_listen = *f.metrics_listen;
  if (f.control_socket) c.control_socket = *f.control_socket;
  if (f.events) c.events = *f.events;
  if (f.threshold_ms > 0) c.threshold_ms = f.threshold_ms;
  parse_listen(c.metrics_listen, "--metrics-listen");
  return c;
}

int run_daemon(const DaemonFlags& flags, const EngineFactory& make) {
  // Before anything starts: a SIGTERM while BPF loads stops the daemon cleanly.
  const auto& stop = install_stop_signals();
  auto& reload_asked = install_reload_signal();
  Daemon d(flags, make);
  return d.run(stop, reload_asked);
}

}  // namespace loopstall
