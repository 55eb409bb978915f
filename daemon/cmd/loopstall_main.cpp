// loopstall: the CLI. Parses the flags of each subcommand and runs it
// (daemon/app/cli_commands.cpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "loopstall/build_info.hpp"
#include "loopstall/cli_checks.hpp"
#include "loopstall/cli_commands.hpp"
#include "loopstall/engine.hpp"

using namespace loopstall;

int main(int argc, char** argv) {
  CLI::App app{"loopstall: find event-loop stalls in Python services, from outside the process", "loopstall"};
  app.set_version_flag("--version", [] { return version_text("loopstall"); });
  app.require_subcommand(1);

  CaptureArgs a;
  CaptureRequest& r = a.request;
  r.format = "text";
  auto* cap = app.add_subcommand(
      "capture",
      "Capture stalls on this host now: through loopstalld when it runs (its control socket), else with "
      "its own BPF programs (--standalone: always its own)");
  cap->add_option("--pid", r.pids, "Only these processes (repeatable); default: every process, also new ones")
      ->check(CLI::PositiveNumber);
  cap->add_option("--duration", a.duration_s, "Seconds to capture; default: until SIGINT/SIGTERM")
      ->check(finite_range(0.001, kMaxDurationS));
  cap->add_option("--threshold-ms", r.threshold_ms, "Report iterations at least this long (ms)")
      ->capture_default_str()
      ->check(finite_range(kMinThresholdMs, kMaxThresholdMs));
  cap->add_option("--format", r.format, "text or json (JSON Lines)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  cap->add_option("--output", a.output, "Write reports to FILE instead of stdout");
  cap->add_flag("--all-loops", r.all_loops, "Also report non-Python epoll loops (loop \"epoll\")");
  cap->add_flag("--standalone", a.standalone, "Load own BPF programs even when loopstalld is running");
  a.socket = default_control_socket();
  cap->add_option("--socket", a.socket, "loopstalld's control socket (env LOOPSTALL_CONTROL_SOCKET)")
      ->capture_default_str();
  cap->add_option("--save", a.save, "Also write a capture file (gzip, versioned; read it with `loopstall report`)");
  a.command_line.assign(argv, argv + argc);

  std::string report_file, report_format = "text";
  auto* rep = app.add_subcommand("report", "Rank what a capture file saw: loops, causes, culprits, syscalls");
  rep->add_option("FILE", report_file, "A capture file (loopstall capture --save FILE)")->required();
  rep->add_option("--format", report_format, "text or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));

  std::string status_socket = default_control_socket(), status_format = "text";
  auto* st = app.add_subcommand("status", "Show what loopstalld watches (loops, stalls, probe health)");
  st->add_option("--socket", status_socket, "loopstalld's control socket")->capture_default_str();
  st->add_option("--format", status_format, "text or json")->check(CLI::IsMember({"text", "json"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*cap) return capture_command(a, make_bpf_engine);
    if (*st) return status_command(status_socket, status_format);
    if (*rep) return report_command(report_file, report_format);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstall: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
