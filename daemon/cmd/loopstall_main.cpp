// loopstall: the CLI. `loopstall capture` finds event-loop stalls now.
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "loopstall/cli_common.hpp"
#include "loopstall/runner.hpp"

using namespace loopstall;

namespace {

struct CaptureArgs {
  std::vector<std::uint32_t> pids;
  double duration_s = 0;
  double threshold_ms = 100;
  std::string format = "text";
  std::string output = "-";
  bool all_loops = false;
};

bool pid_exists(std::uint32_t pid) {
  struct stat st {};
  return stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

int capture(const CaptureArgs& a) {
  for (auto pid : a.pids) {
    if (pid == 0 || !pid_exists(pid)) {
      std::fprintf(stderr, "loopstall: error: no such process: %u\n", pid);
      return 1;
    }
  }
  RunOptions opt;
  opt.selection.pids = {a.pids.begin(), a.pids.end()};
  opt.selection.all_loops = a.all_loops;
  opt.threshold_ms = a.threshold_ms;
  if (a.duration_s > 0) opt.duration_s = a.duration_s;

  std::FILE* out = open_output(a.output, false);
  auto sink = make_sink(a.format, file_writer(out));
  const auto& stop = install_stop_signals();
  run_detector(opt, *sink, stop, [&](Engine& eng) {
    std::fprintf(stderr, "loopstall: ready: %d BPF programs attached; threshold %g ms; watching %s%s\n",
                 eng.attached_programs(), a.threshold_ms,
                 a.pids.empty() ? "every Python process" : "the given processes",
                 a.all_loops ? " and every epoll loop" : "");
  });
  if (out != stdout) std::fclose(out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loopstall: find event-loop stalls in Python services, from outside the process", "loopstall"};
  app.set_version_flag("--version", std::string(LOOPSTALL_VERSION));
  app.require_subcommand(1);

  CaptureArgs a;
  auto* cap = app.add_subcommand("capture", "Capture stalls on this host now (standalone, with its own BPF programs)");
  cap->add_option("--pid", a.pids, "Only these processes (repeatable); default: every process, also new ones")
      ->check(CLI::PositiveNumber);
  cap->add_option("--duration", a.duration_s, "Seconds to capture; default: until SIGINT/SIGTERM")
      ->check(CLI::PositiveNumber);
  cap->add_option("--threshold-ms", a.threshold_ms, "Report iterations at least this long (ms)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cap->add_option("--format", a.format, "text or json (JSON Lines)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  cap->add_option("--output", a.output, "Write reports to FILE instead of stdout");
  cap->add_flag("--all-loops", a.all_loops, "Also report non-Python epoll loops (loop \"epoll\")");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*cap) return capture(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstall: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
