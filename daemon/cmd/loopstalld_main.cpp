// loopstalld: the always-on daemon. Runs the same detector as
// `loopstall capture` over every Python loop on the host.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "loopstall/cli_common.hpp"
#include "loopstall/runner.hpp"

using namespace loopstall;

int main(int argc, char** argv) {
  CLI::App app{"loopstalld: always-on event-loop stall detector", "loopstalld"};
  app.set_version_flag("--version", std::string(LOOPSTALL_VERSION));
  std::string config, metrics_listen = "127.0.0.1:9464", control_socket = "/run/loopstalld/control.sock", events = "-";
  double threshold_ms = 100;
  app.add_option("--config", config, "JSON configuration file")->check(CLI::ExistingFile);
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT for GET /metrics")->capture_default_str();
  app.add_option("--threshold-ms", threshold_ms, "Report iterations at least this long (ms)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--control-socket", control_socket, "Unix socket for loopstall capture/status")->capture_default_str();
  app.add_option("--events", events, "Append stall events (JSON Lines) to FILE, - for stdout")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    std::FILE* out = open_output(events, true);
    auto sink = make_sink("json", out);
    const auto& stop = install_stop_signals();
    RunOptions opt;
    opt.threshold_ms = threshold_ms;
    run_detector(opt, *sink, stop, [&](Engine& eng) {
      std::fprintf(stderr, "loopstalld: ready: %d BPF programs attached; threshold %g ms\n", eng.attached_programs(),
                   threshold_ms);
    });
    if (out != stdout) std::fclose(out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstalld: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
