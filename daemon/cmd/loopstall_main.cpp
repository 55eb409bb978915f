// loopstall: the CLI. `loopstall capture` finds event-loop stalls now.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loopstall/build_info.hpp"
#include "loopstall/capture_file.hpp"
#include "loopstall/cli_checks.hpp"
#include "loopstall/cli_common.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/control.hpp"
#include "loopstall/output.hpp"
#include "loopstall/printable.hpp"
#include "loopstall/procinfo.hpp"
#include "loopstall/report.hpp"
#include "loopstall/report_commands.hpp"
#include "loopstall/runner.hpp"
#include "loopstall/stall.hpp"
#include "loopstall/top.hpp"

using namespace loopstall;

namespace {

struct CaptureArgs {
  std::vector<std::uint32_t> pids;
  double duration_s = 0;
  double threshold_ms = 100;
  std::string format = "text";
  std::string output = "-";
  bool all_loops = false;
  bool standalone = false;
  std::string socket;
  std::string save;  // capture file, "" for none
  std::vector<std::string> command_line;
};

std::string host_name() {
  char buf[256] = "";
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? std::string(u.release) : std::string();
}

const char* kDefaultSocket = "/run/loopstalld/control.sock";

std::string default_socket() {
  const char* env = std::getenv("LOOPSTALL_CONTROL_SOCKET");
  return env && *env ? env : kDefaultSocket;
}

// Reads one '\n'-terminated line from a blocking fd (at most 64 KiB).
bool read_line(int fd, std::string& line, std::string& rest) {
  char buf[4096];
  while (true) {
    const auto nl = rest.find('\n');
    if (nl != std::string::npos) {
      line = rest.substr(0, nl);
      rest.erase(0, nl + 1);
      return true;
    }
    if (rest.size() > 65536) return false;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    rest.append(buf, static_cast<std::size_t>(n));
  }
}

// The capture runs in loopstalld (its BPF programs, its control socket);
// the lines it sends are exactly what a standalone capture prints, handed to
// `out` one line at a time so this process keeps reading the socket.
void capture_via_daemon(int fd, const CaptureArgs& a, OutputQueue& out) {
  nlohmann::json req = {{"cmd", "capture"},
                        {"pids", a.pids},
                        {"threshold_ms", a.threshold_ms},
                        {"all_loops", a.all_loops},
                        {"format", a.format}};
  const std::string line = req.dump() + "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    throw std::runtime_error("writing to loopstalld's control socket failed");
  std::string first, rest;
  // A daemon that accepts but never answers must not hang the capture.
  timeval answer_timeout{5, 0}, none{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &answer_timeout, sizeof answer_timeout);
  if (!read_line(fd, first, rest))
    throw std::runtime_error("loopstalld did not answer on " + a.socket + " (use --standalone)");
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  const auto resp = nlohmann::json::parse(first, nullptr, false);
  if (resp.is_discarded() || !resp.value("ok", false))
    throw std::runtime_error("loopstalld refused the capture: " +
                             printable(resp.is_discarded() ? first : resp.value("error", std::string("?"))));
  std::fprintf(stderr, "loopstall: ready: capturing through loopstalld (%s); threshold %g ms\n", a.socket.c_str(),
               a.threshold_ms);
  const auto& stop = install_stop_signals();
  const std::uint64_t t0 = monotonic_ns();
  bool shut = false;
  auto push_lines = [&out](std::string& buf) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1)
      out.push(std::string_view(buf).substr(start, nl + 1 - start));
    buf.erase(0, start);
  };
  push_lines(rest);
  while (true) {
    const bool over = a.duration_s > 0 && monotonic_ns() - t0 >= static_cast<std::uint64_t>(a.duration_s * 1e9);
    if (!shut && (stop.load() || over)) {
      shutdown(fd, SHUT_WR);  // the daemon reports what is pending and the summary
      shut = true;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    rest.append(buf, static_cast<std::size_t>(n));
    push_lines(rest);
  }
  if (!rest.empty()) out.push(rest);
}

// Records the output lost: the count for the closing line, and whether the
// capture failed (records lost to write errors, e.g. a full disk: exit 1).
bool output_failed(const OutputQueue& out) {
  const auto c = out.counts();
  if (!c.write_errors) return false;
  std::fprintf(stderr, "loopstall: error: %llu of %llu records could not be written to %s\n",
               static_cast<unsigned long long>(c.write_errors),
               static_cast<unsigned long long>(c.written + c.dropped_full + c.write_errors), out.name().c_str());
  return true;
}

int capture(const CaptureArgs& a) {
  for (auto pid : a.pids) {
    if (pid == 0 || !process_exists(pid)) {
      std::fprintf(stderr, "loopstall: error: no such process: %u\n", pid);
      return 1;
    }
  }
  RunOptions opt;
  opt.selection.pids = {a.pids.begin(), a.pids.end()};
  opt.selection.all_loops = a.all_loops;
  opt.threshold_ms = a.threshold_ms;
  if (a.duration_s > 0) opt.duration_s = a.duration_s;

  // Detection never waits on the output: a bounded queue and a writer thread.
  OutputQueue out(RecordFile::open(a.output, false));
  // A capture file needs the loops' counters, which only a capture of our
  // own has: --save captures standalone.
  if (!a.standalone && a.save.empty()) {
    const int fd = connect_control(a.socket);
    if (fd >= 0) {
      try {
        capture_via_daemon(fd, a, out);
      } catch (...) {
        close(fd);
        throw;
      }
      close(fd);
      out.close();
      return output_failed(out) ? 1 : 0;
    }
  }
  auto shown = make_sink(a.format, out.writer());
  FanoutSink sinks;
  sinks.add(shown.get());
  std::unique_ptr<CaptureFileSink> saved;
  if (!a.save.empty()) {
    CaptureMeta meta;
    meta.loopstall_version = LOOPSTALL_VERSION;
    meta.host = host_name();
    meta.kernel = kernel_release();
    meta.threshold_ms = a.threshold_ms;
    meta.start_unix_ns = WallClock{}.to_unix_ns(monotonic_ns());
    meta.command_line = a.command_line;
    saved = std::make_unique<CaptureFileSink>(a.save, std::move(meta));
    sinks.add(saved.get());
  }
  const auto& stop = install_stop_signals();
  const RunStats st = run_detector(opt, sinks, stop, [&](Engine& eng) {
    std::fprintf(stderr, "loopstall: ready: %d BPF programs attached; threshold %g ms; watching %s%s\n",
                 eng.attached_programs(), a.threshold_ms,
                 a.pids.empty() ? "every Python process" : "the given processes",
                 a.all_loops ? " and every epoll loop" : "");
  });
  out.close();
  // The tracer's own account: what it measured and what it had to leave out.
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  const auto oc = out.counts();
  std::fprintf(stderr,
               "loopstall: done: %llu iterations, %llu stall events; on-CPU samples: %llu taken, %llu skipped "
               "(ring buffer half full), %llu over the daemon's budget; %llu run-state repairs; %llu events "
               "dropped (ring buffer full); %llu records written, %llu dropped (output not keeping up), %llu "
               "lost (write errors)\n",
               u(st.bpf.iterations), u(st.bpf.stalls), u(st.bpf.samples), u(st.bpf.samples_skipped),
               u(st.samples_over_budget), u(st.bpf.state_repairs), u(st.bpf.ringbuf_drops), u(oc.written),
               u(oc.dropped_full), u(oc.write_errors));
  return output_failed(out) ? 1 : 0;
}

int report(const std::string& path, const std::string& format) {
  const Report r = make_report(read_capture(path));
  if (format == "json")
    std::printf("%s\n", report_to_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  else
    std::fputs(format_report_text(r).c_str(), stdout);
  return 0;
}

int status(const std::string& socket, const std::string& format) {
  const int fd = connect_control(socket);
  if (fd < 0 && (errno == EACCES || errno == EPERM)) {
    std::fprintf(stderr,
                 "loopstall: error: permission denied on %s: run as root (loopstalld's control socket is "
                 "root-only, mode 0600)\n",
                 socket.c_str());
    return 1;
  }
  if (fd < 0) {
    std::fprintf(stderr, "loopstall: error: loopstalld is not running (nothing listens on %s)\n", socket.c_str());
    return 1;
  }
  const std::string req = "{\"cmd\":\"status\"}\n";
  std::string line, rest;
  const bool ok = write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()) && read_line(fd, line, rest);
  close(fd);
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (!ok || j.is_discarded()) {
    std::fprintf(stderr, "loopstall: error: no valid answer from loopstalld on %s\n", socket.c_str());
    return 1;
  }
  if (format == "json") {
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("loopstalld %s, up %.0f s, threshold %g ms, metrics on %s\n", j.value("version", "?").c_str(),
              j.value("uptime_s", 0.0), j.value("threshold_ms", 0.0), j.value("metrics_listen", "?").c_str());
  std::string kinds;
  for (LoopKind k : kLoopKinds) {
    const std::string name(to_string(k));
    kinds += (kinds.empty() ? "" : ", ") + name + " " + std::to_string(j["loops"].value(name, 0));
  }
  std::printf("watching %d processes, %d loops (%s)\n", j.value("watched_processes", 0), j.value("monitored_loops", 0),
              kinds.c_str());
  std::printf("stalls so far %llu, stalled now %d, lost events %llu\n",
              static_cast<unsigned long long>(j.value("stalls_total", 0ULL)), j.value("ongoing_stalls", 0),
              static_cast<unsigned long long>(j.value("lost_events", 0ULL)));
  std::printf("BPF programs attached %d\n", j["bpf"].value("programs_attached", 0));
  for (const auto& [name, n] : j["alerts_firing"].items())
    std::printf("alert %s: %d firing\n", name.c_str(), n.get<int>());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loopstall: find event-loop stalls in Python services, from outside the process", "loopstall"};
  app.set_version_flag("--version", [] { return version_text("loopstall"); });
  app.require_subcommand(1);

  CaptureArgs a;
  auto* cap = app.add_subcommand(
      "capture",
      "Capture stalls on this host now: through loopstalld when it runs (its control socket), else with "
      "its own BPF programs (--standalone: always its own)");
  cap->add_option("--pid", a.pids, "Only these processes (repeatable); default: every process, also new ones")
      ->check(CLI::PositiveNumber);
  cap->add_option("--duration", a.duration_s, "Seconds to capture; default: until SIGINT/SIGTERM")
      ->check(finite_range(0.001, kMaxDurationS));
  cap->add_option("--threshold-ms", a.threshold_ms, "Report iterations at least this long (ms)")
      ->capture_default_str()
      ->check(finite_range(kMinThresholdMs, kMaxThresholdMs));
  cap->add_option("--format", a.format, "text or json (JSON Lines)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  cap->add_option("--output", a.output, "Write reports to FILE instead of stdout");
  cap->add_flag("--all-loops", a.all_loops, "Also report non-Python epoll loops (loop \"epoll\")");
  cap->add_flag("--standalone", a.standalone, "Load own BPF programs even when loopstalld is running");
  a.socket = default_socket();
  cap->add_option("--socket", a.socket, "loopstalld's control socket (env LOOPSTALL_CONTROL_SOCKET)")
      ->capture_default_str();

  cap->add_option("--save", a.save,
                  "Also write a capture file (gzip, versioned; read it with `loopstall report`); captures standalone");
  a.command_line.assign(argv, argv + argc);

  std::string report_file, report_format = "text";
  auto* rep = app.add_subcommand("report", "Rank what a capture file saw: loops, causes, culprits, syscalls");
  rep->add_option("FILE", report_file, "A capture file (loopstall capture --save FILE)")->required();
  rep->add_option("--format", report_format, "text or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));

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

  std::string status_socket = default_socket(), status_format = "text";
  auto* st = app.add_subcommand("status", "Show what loopstalld watches (loops, stalls, probe health)");
  st->add_option("--socket", status_socket, "loopstalld's control socket")->capture_default_str();
  st->add_option("--format", status_format, "text or json")->check(CLI::IsMember({"text", "json"}));

  TopCommand t;
  t.socket = default_socket();
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
    if (*cap) return capture(a);
    if (*st) return status(status_socket, status_format);
    if (*rep) return report(report_file, report_format);
    if (*flame) return flamegraph_command(flame_file, flame_output, flame_format);
    if (*diff) return diff_command(diff_a, diff_b, diff_svg);
    if (*top) return top_command(t);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopstall: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
