#include "loopstall/stall_metrics.hpp"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

namespace loopstall {
namespace {

// kernel.bpf_stats_enabled: without it the kernel counts no BPF run time,
// and a 0 would read as "free".
bool bpf_stats_enabled() {
  std::ifstream in("/proc/sys/kernel/bpf_stats_enabled");
  int v = 0;
  return in >> v && v != 0;
}

}  // namespace

std::string ServiceLabels::operator()(const std::string& service) {
  if (seen_.count(service)) return service;
  if (seen_.size() >= max_) return "other";
  seen_.insert(service);
  return service;
}

StallMetrics::StallMetrics(Registry& reg, std::size_t max_services, const std::string& version)
    : reg_(reg), services_(max_services) {
  std::lock_guard<std::mutex> lock(reg_.mutex());
  reg_.gauge("loopstall_build_info", "Build of the running loopstalld (value 1)", {"version"}).set({version}, 1);
  reg_.counter("loopstall_stalls_total", "Event-loop stalls (iterations >= threshold), by main cause",
               {"cause", "service"});
  reg_.histogram("loopstall_stall_duration_seconds", "Duration of finished stalls", {"service"}, kStallBuckets);
  reg_.counter("loopstall_loop_iterations_total", "Event-loop iterations measured", {"service"});
  reg_.histogram("loopstall_iteration_duration_seconds",
                 "Durations of all loop iterations (from the kernel's log2 histogram; _sum is an upper bound)",
                 {"service"}, kIterationBuckets);
  reg_.gauge("loopstall_monitored_loops", "Loop threads being measured now");
  reg_.counter("loopstall_lost_events_total",
               "Events the BPF ring buffer dropped (full); threads not tracked are in loopstall_bpf_map_full_total");
  reg_.counter("loopstall_stall_time_seconds_total", "Time spent in stalls, by component", {"component", "service"});
  reg_.counter("loopstall_blocked_seconds_total", "Time stalls were blocked in a syscall", {"syscall", "service"});
  reg_.gauge("loopstall_loops", "Loop threads being measured now, by loop kind", {"loop"});
  reg_.gauge("loopstall_ongoing_stalls", "Loops stalled right now (iteration in progress >= threshold)");
  reg_.gauge("loopstall_longest_ongoing_stall_seconds", "Age of the longest iteration in progress");
  reg_.gauge("loopstall_watched_processes", "Processes whose loops are measured");
  reg_.counter("loopstall_bpf_map_full_total", "Threads or processes not tracked because a BPF map was full", {"map"});
  reg_.gauge("loopstall_bpf_map_entries",
             "Entries in use in the BPF maps that grow with the host's processes: loops (loop threads, of 4096), "
             "procs (processes that called epoll_wait, of 16384), py_threads (of 4096)",
             {"map"});
  reg_.counter("loopstall_bpf_iterations_total", "Iterations the BPF programs measured (all consumers)");
  reg_.counter("loopstall_bpf_samples_total",
               "On-CPU samples of loop threads inside long iterations (stack evidence for stalls)");
  reg_.counter("loopstall_bpf_samples_skipped_total",
               "On-CPU samples not taken because the ring buffer was half full (stall events keep the rest)");
  reg_.counter("loopstall_samples_over_budget_total",
               "On-CPU samples left unread because the daemon's stack-reading budget (300/s) was spent");
  reg_.counter("loopstall_bpf_run_state_repairs_total",
               "Switch-ins of loop threads the tracer did not see, repaired when the thread was next seen running");
  reg_.gauge("loopstall_alerts_firing", "Alerts firing now, by rule", {"alert"});
  reg_.counter("loopstall_alert_deliveries_total", "Alertmanager deliveries", {"result"});
  reg_.counter("loopstall_output_dropped_total",
               "Records an output did not take, dropped whole: it did not keep up (queue_full) or writing "
               "failed (write_error, e.g. disk full)",
               {"output", "reason"});
  reg_.counter("loopstall_probe_attach_failures_total", "BPF programs that could not be attached", {"probe"});
  reg_.gauge("loopstall_bpf_stats_enabled",
             "1 when kernel.bpf_stats_enabled=1: only then are loopstall_bpf_program_run* exported");
  reg_.counter("loopstall_bpf_program_runs_total",
               "Runs of each BPF program (absent unless sysctl kernel.bpf_stats_enabled=1)", {"program"});
  reg_.counter("loopstall_bpf_program_run_seconds_total",
               "Kernel time spent in each BPF program (absent unless sysctl kernel.bpf_stats_enabled=1)", {"program"});
}

void StallMetrics::set_output_dropped(const std::string& output, std::uint64_t not_keeping_up,
                                      std::uint64_t write_errors) {
  std::lock_guard<std::mutex> lock(reg_.mutex());
  auto& c = reg_.counter("loopstall_output_dropped_total", "", {"output", "reason"});
  c.set({output, "queue_full"}, static_cast<double>(not_keeping_up));
  c.set({output, "write_error"}, static_cast<double>(write_errors));
}

void StallMetrics::stall(const StallReport& r) {
  if (r.ongoing) return;  // counted once, when finished
  const std::string svc = services_(r.service);
  std::lock_guard<std::mutex> lock(reg_.mutex());
  reg_.counter("loopstall_stalls_total", "", {"cause", "service"}).add({std::string(to_string(r.cause)), svc}, 1);
  reg_.histogram("loopstall_stall_duration_seconds", "", {"service"}, kStallBuckets)
      .observe({svc}, r.duration_ms / 1e3);
  auto& comp = reg_.counter("loopstall_stall_time_seconds_total", "", {"component", "service"});
  comp.add({"on_cpu", svc}, (r.breakdown.on_cpu_ms - r.breakdown.gc_ms) / 1e3);
  comp.add({"blocked", svc}, r.breakdown.blocked_ms / 1e3);
  comp.add({"runqueue", svc}, r.breakdown.runqueue_ms / 1e3);
  comp.add({"gc", svc}, r.breakdown.gc_ms / 1e3);
  auto& blocked = reg_.counter("loopstall_blocked_seconds_total", "", {"syscall", "service"});
  for (const auto& s : r.syscalls) blocked.add({s.name, svc}, s.ms / 1e3);
}

void StallMetrics::iterations(std::uint32_t, const std::string& service, const IterationDelta& d) {
  const std::string svc = services_(service);
  std::lock_guard<std::mutex> lock(reg_.mutex());
  reg_.counter("loopstall_loop_iterations_total", "", {"service"}).add({svc}, static_cast<double>(d.count));
  auto& h = reg_.histogram("loopstall_iteration_duration_seconds", "", {"service"}, kIterationBuckets);
  for (std::size_t i = 0; i < d.hist.size(); ++i)
    if (d.hist[i]) h.observe_n({svc}, hist_bucket_upper_s(i), d.hist[i]);
}

void StallMetrics::refresh(Detector& det, const Correlator& corr) {
  const std::vector<ls_loop>& loops = det.last_scan();
  LoopEngine& eng = det.engine();
  std::map<std::string, double> by_kind;
  for (LoopKind k : kLoopKinds) by_kind[std::string(to_string(k))] = 0;
  double monitored = 0;
  for (const ls_loop& l : loops) {
    if (!corr.watches(l.tgid)) continue;
    monitored++;
    by_kind[std::string(to_string(corr.loop_kind_of(l.tgid)))]++;
  }
  const BpfStats st = eng.stats();
  const MapOccupancy occ = eng.map_occupancy();
  const bool run_stats = bpf_stats_enabled();
  const std::vector<ProgramStats> progs = run_stats ? eng.program_stats() : std::vector<ProgramStats>{};
  std::lock_guard<std::mutex> lock(reg_.mutex());
  reg_.gauge("loopstall_bpf_stats_enabled", "").set({}, run_stats ? 1 : 0);
  auto& runs = reg_.counter("loopstall_bpf_program_runs_total", "", {"program"});
  auto& secs = reg_.counter("loopstall_bpf_program_run_seconds_total", "", {"program"});
  for (const auto& p : progs) {
    runs.set({p.name}, static_cast<double>(p.runs));
    secs.set({p.name}, static_cast<double>(p.run_time_ns) / 1e9);
  }
  auto& failures = reg_.counter("loopstall_probe_attach_failures_total", "", {"probe"});
  for (const auto& [name, err] : eng.attach_failures()) failures.set({name}, 1);
  reg_.gauge("loopstall_monitored_loops", "").set({}, monitored);
  auto& kinds = reg_.gauge("loopstall_loops", "", {"loop"});
  for (const auto& [k, n] : by_kind) kinds.set({k}, n);
  reg_.gauge("loopstall_ongoing_stalls", "").set({}, static_cast<double>(corr.ongoing_count()));
  reg_.gauge("loopstall_longest_ongoing_stall_seconds", "")
      .set({}, static_cast<double>(corr.longest_ongoing_ns()) / 1e9);
  reg_.gauge("loopstall_watched_processes", "").set({}, static_cast<double>(corr.watched_processes()));
  reg_.counter("loopstall_lost_events_total", "").set({}, static_cast<double>(corr.lost()));
  auto& full = reg_.counter("loopstall_bpf_map_full_total", "", {"map"});
  full.set({"loops"}, static_cast<double>(st.loops_full));
  full.set({"procs"}, static_cast<double>(st.procs_full));
  auto& entries = reg_.gauge("loopstall_bpf_map_entries", "", {"map"});
  entries.set({"loops"}, static_cast<double>(occ.loops));
  entries.set({"procs"}, static_cast<double>(occ.procs));
  entries.set({"py_threads"}, static_cast<double>(occ.py_threads));
  reg_.counter("loopstall_bpf_iterations_total", "").set({}, static_cast<double>(st.iterations));
  reg_.counter("loopstall_bpf_samples_total", "").set({}, static_cast<double>(st.samples));
  reg_.counter("loopstall_bpf_samples_skipped_total", "").set({}, static_cast<double>(st.samples_skipped));
  reg_.counter("loopstall_samples_over_budget_total", "").set({}, static_cast<double>(det.samples_over_budget()));
  reg_.counter("loopstall_bpf_run_state_repairs_total", "").set({}, static_cast<double>(st.state_repairs));
}

void refresh_process_metrics(Registry& reg) {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  double cpu = 0, rss = 0, start = 0, fds = 0;
  {
    std::ifstream in("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    const auto rp = text.rfind(')');
    if (rp != std::string::npos) {
      std::istringstream ss(text.substr(rp + 2));
      std::vector<std::string> f((std::istream_iterator<std::string>(ss)), {});
      // Fields after ")": state=0 ... utime=11 stime=12 starttime=19 rss=21
      if (f.size() > 21) {
        cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
        rss = std::stod(f[21]) * page;
        double boot = 0;
        std::ifstream st("/proc/stat");
        std::string key;
        while (st >> key)
          if (key == "btime" && st >> boot) break;
        start = boot + std::stod(f[19]) / ticks;
      }
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) fds++;
    closedir(d);
    fds -= 3;  // ".", ".." and the directory's own fd
  }
  std::lock_guard<std::mutex> lock(reg.mutex());
  reg.counter("process_cpu_seconds_total", "User and system CPU time of loopstalld").set({}, cpu);
  reg.gauge("process_resident_memory_bytes", "Resident memory of loopstalld").set({}, rss);
  reg.gauge("process_start_time_seconds", "Start time of loopstalld since the epoch").set({}, start);
  reg.gauge("process_open_fds", "Open file descriptors of loopstalld").set({}, fds);
}

}  // namespace loopstall
