// loopstall: the CLI. Parses the flags of each subcommand and runs it
// (daemon/app/cli_commands.cpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "loopstall/build_info.hpp"
#include "loopstall/cli_checks.hpp"
#include "loopstall/cli_commands.hpp"
#include "loopstall/engine.hpp"
#include "loopstall/report_commands.hpp"
#include "loopstall/top.hpp"

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
  cap->add_flag("--coalesce", r.coalesce,
                "Fold repeats of one loop's stall with one culprit into a summary event per 10 s window "
                "(\"coalesced\"), as loopstalld's event log does");
  a.socket = default_control_socket();
  cap->add_option("--socket", a.socket, "loopstalld's control socket (env LOOPSTALL_CONTROL_SOCKET)")
      ->capture_default_str();
  cap->add_flag("--ongoing", r.ongoing_lines,
                "Text: print every report of a stall still going on as a line (default: one status line "
                "updated in place on a terminal; elsewhere from 1 s on, then every 5 s)");
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

  std::string flame_file, flame_output = "-", flame_format = "svg";
  auto* flame = app.add_subcommand("flamegraph", "Draw a capture file's stall time as a flame graph");
  flame->add_option("FILE", flame_file, "A capture file (loopstall capture --save FILE)")->required();
  flame->add_option("-o,--output", flame_output, "Write to OUT instead of stdout");
  auto* flame_fmt = flame->add_option("--format", flame_format, "svg (interactive), folded or speedscope (JSON)")
                        ->capture_default_str()
                        ->check(CLI::IsMember({"svg", "folded", "speedscope"}));
  flame
      ->add_flag_callback(
          "--folded", [&] { flame_format = "folded"; }, "Same as --format folded")
      ->excludes(flame_fmt);

  std::string diff_a, diff_b, diff_svg;
  auto* diff = app.add_subcommand("diff", "What changed from capture file A to capture file B");
  diff->add_option("A", diff_a, "The capture before")->required();
  diff->add_option("B", diff_b, "The capture after")->required();
  diff->add_option("-o,--output", diff_svg, "Also write a differential flame graph SVG (red: more in B)");

  TopCommand t;
  t.socket = default_control_socket();
  auto* top = app.add_subcommand("top", "Live view of watched loops: utilisation, iterations/s, p99, stalls, churn");
  top->add_option("--interval", t.view.interval_s, "Seconds between refreshes")
      ->capture_default_str()
      ->check(finite_range(0.1, 3600));
  top->add_option("--sort", t.sort, "util, iter, p99, stalls, churn or pid (keys s/u/i/p/t/c/n change it)")
      ->capture_default_str()
      ->check(CLI::IsMember({"util", "iter", "p99", "stalls", "churn", "pid"}));
  top->add_flag("--batch,-b", t.view.batch, "Print tables instead of the terminal view (as when piped)");
  top->add_option("--count,-n", t.view.count, "Refresh this many times, then exit")->check(CLI::PositiveNumber);
  top->add_option("--pid", t.view.pids, "Only these processes (repeatable)")->check(CLI::PositiveNumber);
  top->add_flag("--all-loops", t.all_loops, "Standalone: also non-Python epoll loops");
  top->add_option("--threshold-ms", t.threshold_ms, "Standalone: stall threshold (ms)")
      ->capture_default_str()
      ->check(finite_range(kMinThresholdMs, kMaxThresholdMs));
  top->add_flag("--standalone", t.standalone, "Load own BPF programs even when loopstalld is running");
  top->add_option("--socket", t.socket, "loopstalld's control socket (env LOOPSTALL_CONTROL_SOCKET)")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*cap) return capture_command(a, make_bpf_engine);
    if (*st) return status_command(status_socket, status_format);
    if (*rep) return report_command(report_file, report_format);
    if (*flame) return flamegraph_command(flame_file, flame_output, flame_format);
    if (*diff) return diff_command(diff_a, diff_b, diff_svg);
    if (*top) return top_command(t, make_bpf_engine);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstall: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
