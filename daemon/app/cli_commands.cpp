#include "loopstall/cli_commands.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "daemon_client.hpp"
#include "loopstall/capture_file.hpp"
#include "loopstall/capture_session.hpp"
#include "loopstall/cli_common.hpp"
#include "loopstall/control_server.hpp"
#include "loopstall/output.hpp"
#include "loopstall/procinfo.hpp"
#include "loopstall/report.hpp"
#include "loopstall/runner.hpp"

namespace loopstall {
namespace {

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

// The tracer's own account: what it measured and what it had to leave out.
void print_done(const RunStats& st, const OutputQueue& out) {
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
}

// A capture with this process's own BPF programs.
int capture_standalone(const CaptureArgs& a, const EngineFactory& make, OutputQueue& out) {
  const CaptureRequest& r = a.request;
  RunOptions opt;
  opt.selection.pids = {r.pids.begin(), r.pids.end()};
  opt.selection.all_loops = r.all_loops;
  opt.threshold_ms = r.threshold_ms;
  if (a.duration_s > 0) opt.duration_s = a.duration_s;
  opt.coalesce.enabled = r.coalesce;
  CaptureOutput output(r.format, out.writer(), TextOptions{r.terminal_columns, r.ongoing_lines}, opt.coalesce);
  if (!a.save.empty())
    output.save(std::make_unique<CaptureFileSink>(a.save, capture_meta(r.threshold_ms, a.command_line)));
  const auto& stop = install_stop_signals();
  const RunStats st = run_detector(opt, make, output.sink(), stop, [&](LoopEngine& eng) {
    std::fprintf(stderr, "loopstall: ready: %d BPF programs attached; threshold %g ms; watching %s%s\n",
                 eng.attached_programs(), r.threshold_ms,
                 r.pids.empty() ? "every Python process" : "the given processes",
                 r.all_loops ? " and every epoll loop" : "");
  });
  out.close();
  print_done(st, out);
  return output_failed(out) ? 1 : 0;
}

}  // namespace

std::string default_control_socket() {
  const char* env = std::getenv("LOOPSTALL_CONTROL_SOCKET");
  return env && *env ? env : kDefaultControlSocket;
}

int capture_command(const CaptureArgs& asked, const EngineFactory& make) {
  for (auto pid : asked.request.pids) {
    if (pid == 0 || !process_exists(pid)) {
      std::fprintf(stderr, "loopstall: error: no such process: %u\n", pid);
      return 1;
    }
  }
  // Detection never waits on the output: a bounded queue and a writer thread.
  OutputQueue out(RecordFile::open(asked.output, false));
  // Text is laid out for where it goes: a terminal gets a status line.
  CaptureArgs a = asked;
  if (a.request.format == "text") a.request.terminal_columns = out.terminal_columns();
  if (!a.standalone) {
    if (const int fd = connect_control(a.socket); fd >= 0) {
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
  return capture_standalone(a, make, out);
}

int report_command(const std::string& path, const std::string& format) {
  const Report r = make_report(read_capture(path));
  if (format == "json")
    std::printf("%s\n", report_to_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  else
    std::fputs(format_report_text(r).c_str(), stdout);
  return 0;
}

}  // namespace loopstall
