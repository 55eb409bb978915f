// loopstalld: the always-on daemon. Watches every Python event loop on the
// host, serves Prometheus metrics, fires alerts, logs stall events and
// serves `loopstall capture`/`status` over its control socket. This main
// parses the flags and hands the BPF engine to the daemon (daemon/app/daemon.cpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "loopstall/build_info.hpp"
#include "loopstall/cli_checks.hpp"
#include "loopstall/daemon.hpp"
#include "loopstall/engine.hpp"

using namespace loopstall;

int main(int argc, char** argv) {
  CLI::App app{"loopstalld: always-on event-loop stall detector", "loopstalld"};
  app.set_version_flag("--version", [] { return version_text("loopstalld"); });
  DaemonFlags f;
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
    return run_daemon(f, make_bpf_engine);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstalld: error: %s\n", e.what());
    return 1;
  }
}
