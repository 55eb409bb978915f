// loopstalld: the always-on daemon. Watches every Python event loop on the
// host, serves Prometheus metrics, fires alerts, logs stall events and
// serves `loopstall capture`/`status` over its control socket.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "loopstall/alerts.hpp"
#include "loopstall/build_info.hpp"
#include "loopstall/cli_checks.hpp"
#include "loopstall/cli_common.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/config.hpp"
#include "loopstall/capture_session.hpp"
#include "loopstall/control_server.hpp"
#include "loopstall/detector.hpp"
#include "loopstall/engine.hpp"
#include "loopstall/http_server.hpp"
#include "loopstall/json_sink.hpp"
#include "loopstall/notify.hpp"
#include "loopstall/output.hpp"
#include "loopstall/stall_metrics.hpp"

using namespace loopstall;

namespace {

struct Flags {
  std::string config;
  // Unset: the config file's value. "" is a value (e.g. --events "" = off).
  std::optional<std::string> metrics_listen, control_socket, events;
  double threshold_ms = 0;
  bool check_config = false;
};

// Config file (or built-in defaults) with the command line on top.
Config effective_config(const Flags& f) {
  Config c = f.config.empty() ? Config{} : load_config(f.config);
  if (f.metrics_listen) c.metrics_listen = *f.metrics_listen;
  if (f.control_socket) c.control_socket = *f.control_socket;
  if (f.events) c.events = *f.events;
  if (f.threshold_ms > 0) c.threshold_ms = f.threshold_ms;
  parse_listen(c.metrics_listen, "--metrics-listen");
  return c;
}

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

// Counts final reports for `loopstall status`.
class StallCounter : public Sink {
 public:
  void stall(const StallReport& r) override { stalls += r.ongoing ? 0 : 1; }
  std::uint64_t stalls = 0;
};

int run(const Flags& flags) {
  Config cfg = effective_config(flags);
  const auto& stop = install_stop_signals();
  auto& reload = install_reload_signal();

  // Detection never waits on the event log: a bounded queue, a writer thread.
  std::unique_ptr<OutputQueue> events;
  if (!cfg.events.empty()) events = std::make_unique<OutputQueue>(RecordFile::open(cfg.events, true));
  Registry reg;
  StallMetrics metrics(reg, cfg.max_services, LOOPSTALL_VERSION);
  std::unique_ptr<AlertSender> sender;
  if (!cfg.alertmanager_url.empty())
    sender = std::make_unique<AlertSender>(cfg.alertmanager_url, cfg.alertmanager_timeout_ms);
  AlertEngine alerts(cfg.rules, sender.get(), stderr, {}, alert_labels(cfg));
  StallCounter counter;
  std::unique_ptr<JsonLinesSink> event_log;
  FanoutSink fan;
  if (events) {
    event_log = std::make_unique<JsonLinesSink>(events->writer());
    fan.add(event_log.get());
  }
  fan.add(&metrics);
  fan.add(&alerts);
  fan.add(&counter);

  // The port first: a second daemon on the same port stops here, before it
  // loads any BPF (the listener has no SO_REUSEPORT: scrapes never alternate
  // between two daemons).
  const std::uint64_t started = monotonic_ns();
  std::atomic<std::uint64_t> last_step{started};
  // Not a structured binding: lambdas below use host (clang < 16 cannot capture one).
  const auto listen_at = parse_listen(cfg.metrics_listen, "metrics_listen");
  const std::string& host = listen_at.first;
  const int port = listen_at.second;
  MetricsServer http(host, port, reg, [&last_step] {
    // The detector loop wakes at least every 20 ms; 5 s of silence is a hang.
    return monotonic_ns() - last_step.load() < 5'000'000'000ULL;
  });

  EngineOptions eo;
  eo.tuning = cfg.tuning();
  Detector det(eo, make_bpf_engine);
  // One selection: captures name services with the very rules of the
  // daemon's watch, so they take its names as they are.
  const Selection sel = selection_of(cfg);
  CaptureSession watch(det, sel, cfg.threshold_ms, fan);
  Correlator& corr = watch.correlator();
  corr.keep_exited_totals(false);

  std::unique_ptr<ControlServer> control;
  auto status = [&]() -> nlohmann::json {
    std::map<std::string, int> kinds;
    for (LoopKind k : kLoopKinds) kinds[std::string(to_string(k))] = 0;
    int monitored = 0;
    for (const ls_loop& l : det.last_scan())
      if (corr.watches(l.tgid)) monitored++, kinds[std::string(to_string(corr.loop_kind_of(l.tgid)))]++;
    const BpfStats st = det.engine().stats();
    const MapOccupancy occ = det.engine().map_occupancy();
    return {{"version", LOOPSTALL_VERSION},
            {"uptime_s", static_cast<double>(monotonic_ns() - started) / 1e9},
            {"threshold_ms", corr.threshold_ms()},
            // The kernel reports at the lowest threshold of the daemon and
            // its capture clients; back to threshold_ms when none is left.
            {"kernel_threshold_ms", Tuning::ns_to_ms(det.engine().threshold_ns())},
            {"control",
             {{"clients", control ? control->clients() : 0},
              {"captures", control ? control->captures() : 0},
              {"dropped", control ? control->dropped_clients() : 0},
              {"refused", control ? control->refused_clients() : 0}}},
            {"watched_processes", corr.watched_processes()},
            {"monitored_loops", monitored},
            {"loops", kinds},
            {"stalls_total", counter.stalls},
            {"ongoing_stalls", corr.ongoing_count()},
            {"lost_events", corr.lost()},
            {"untracked", {{"loops_map_full", st.loops_full}, {"procs_map_full", st.procs_full}}},
            {"bpf",
             {{"programs_attached", det.engine().attached_programs()},
              {"iterations", st.iterations},
              {"map_entries", {{"loops", occ.loops}, {"procs", occ.procs}, {"py_threads", occ.py_threads}}}}},
            {"alerts_firing", alerts.firing_counts()},
            {"metrics_listen", host + ":" + std::to_string(http.port())}};
  };
  if (!cfg.control_socket.empty()) {
    control = std::make_unique<ControlServer>(cfg.control_socket, det, status);
    control->set_naming(sel.naming);
  }

  Notifier notifier;
  std::fprintf(stderr,
               "loopstalld: ready: %d BPF programs attached; threshold %g ms; metrics on http://%s:%d/metrics\n",
               det.engine().attached_programs(), cfg.threshold_ms, host.c_str(), http.port());
  notifier.ready("watching " + std::to_string(corr.watched_processes()) + " Python processes");

  std::uint64_t seen_scans = 0, next_slow = 0;
  while (!stop.load()) {
    det.step(20);
    const std::uint64_t now = monotonic_ns();
    last_step.store(now);
    if (control) control->poll();
    if (det.scans() != seen_scans) {  // hung-loop alerts need every scan
      seen_scans = det.scans();
      alerts.tick(det.last_scan(), corr, now);
    }
    if (now >= next_slow) {  // once a second: gauges and BPF counters cost syscalls
      next_slow = now + 1'000'000'000ULL;
      metrics.refresh(det, corr);
      if (events) {
        const auto c = events->counts();
        metrics.set_output_dropped("events", c.dropped_full, c.write_errors);
      }
      refresh_process_metrics(reg);
      {
        std::lock_guard<std::mutex> lock(reg.mutex());
        auto& firing = reg.gauge("loopstall_alerts_firing", "Alerts firing now, by rule", {"alert"});
        for (const auto& [name, n] : alerts.firing_counts()) firing.set({name}, n);
        if (sender) {
          auto& d = reg.counter("loopstall_alert_deliveries_total", "Alertmanager deliveries", {"result"});
          d.set({"ok"}, static_cast<double>(sender->delivered()));
          d.set({"error"}, static_cast<double>(sender->failed()));
        }
      }
      notifier.status("watching " + std::to_string(corr.watched_processes()) + " processes, " +
                      std::to_string(counter.stalls) + " stalls so far");
    }
    notifier.maybe_ping(now);
    if (reload.exchange(false)) {
      notifier.reloading();
      try {
        Config next = effective_config(flags);
        const Selection next_sel = selection_of(next);
        corr.set_selection(next_sel);
        corr.set_threshold_ms(next.threshold_ms);
        det.update_threshold();
        if (next.sample_hz != cfg.sample_hz) det.set_sample_period_ns(next.tuning().sample_period_ns());
        det.reclassify(corr);
        alerts.set_rules(next.rules, now);
        alerts.set_labels(alert_labels(next));
        if (control) control->set_naming(next_sel.naming);
        metrics.set_max_services(next.max_services);
        if (next.metrics_listen != cfg.metrics_listen || next.control_socket != cfg.control_socket ||
            next.events != cfg.events || next.alertmanager_url != cfg.alertmanager_url)
          std::fprintf(stderr,
                       "loopstalld: reload: listen address, control socket, event log and Alertmanager URL "
                       "changes take effect at restart\n");
        cfg = std::move(next);
        std::fprintf(stderr, "loopstalld: configuration reloaded (threshold %g ms, %zu alert rules)\n",
                     cfg.threshold_ms, cfg.rules.size());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "loopstalld: reload failed, keeping the old configuration: %s\n", e.what());
      }
      notifier.ready("configuration reloaded");
    }
  }
  notifier.stopping();
  std::fprintf(stderr, "loopstalld: stopping\n");
  control.reset();
  watch.stop();
  if (events) events->close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loopstalld: always-on event-loop stall detector", "loopstalld"};
  app.set_version_flag("--version", [] { return version_text("loopstalld"); });
  Flags f;
  app.add_option("--config", f.config, "JSON configuration file (default: built-in configuration)");
  app.add_option("--metrics-listen", f.metrics_listen, "HOST:PORT for GET /metrics (default 127.0.0.1:9750)");
  app.add_option("--threshold-ms", f.threshold_ms, "Report iterations at least this long, ms (default 100)")
      ->check(finite_range(kMinThresholdMs, kMaxThresholdMs));
  app.add_option("--control-socket", f.control_socket,
                 "Unix socket for loopstall capture/status (default /run/loopstalld/control.sock; \"\" = none)");
  app.add_option("--events", f.events,
                 "Append stall events (JSON Lines) to FILE, - for stdout (default -; \"\" = none)");
  app.add_flag("--check-config", f.check_config,
               "Check the configuration (--config FILE, or the built-in one) and the flags, print the result, exit "
               "0 if valid and 1 if not; starts nothing");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (f.check_config) {
      const Config c = effective_config(f);
      std::printf("%s: configuration OK (%zu alert rules, %zu service naming rules)\n",
                  f.config.empty() ? "built-in" : f.config.c_str(), c.rules.size(), c.naming.rules.size());
      return 0;
    }
    return run(f);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstalld: error: %s\n", e.what());
    return 1;
  }
}
