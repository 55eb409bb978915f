#include "loopstall/health_probe.hpp"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
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

SelfUsage read_self_usage() {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  SelfUsage u;
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto rp = text.rfind(')');
  if (rp != std::string::npos && rp + 2 <= text.size()) {
    std::istringstream ss(text.substr(rp + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(ss)), {});
    // Fields after ")": state=0 ... utime=11 stime=12 starttime=19 rss=21
    if (f.size() > 21) {
      u.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      u.rss_bytes = std::stod(f[21]) * page;
      double boot = 0;
      std::ifstream st("/proc/stat");
      std::string key;
      while (st >> key)
        if (key == "btime" && st >> boot) break;
      u.start_time_s = boot + std::stod(f[19]) / ticks;
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) u.open_fds++;
    closedir(d);
    u.open_fds -= 3;  // ".", ".." and the directory's own fd
  }
  return u;
}

void HealthProbe::read_counters(std::uint64_t now_ns) {
  LoopEngine& eng = det_.engine();
  const BpfStats st = eng.stats();
  h_.bpf = {.iterations = st.iterations,
            .samples = st.samples,
            .samples_skipped = st.samples_skipped,
            .state_repairs = st.state_repairs,
            .loops_full = st.loops_full,
            .procs_full = st.procs_full};
  const MapOccupancy occ = eng.map_occupancy();
  h_.map_entries = {.loops = occ.loops, .procs = occ.procs, .py_threads = occ.py_threads};
  h_.programs_attached = eng.attached_programs();
  h_.attach_failures.clear();
  for (const auto& [name, err] : eng.attach_failures()) h_.attach_failures.push_back(name);
  h_.bpf_stats_enabled = bpf_stats_enabled();
  h_.programs.clear();
  if (h_.bpf_stats_enabled)
    for (const ProgramStats& p : eng.program_stats()) h_.programs.push_back({p.name, p.runs, p.run_time_ns});
  h_.self = read_self_usage();
  h_.counters_read_ns = now_ns;
}

const Health& HealthProbe::take(std::uint64_t now_ns, bool fresh) {
  h_.now_ns = now_ns;
  h_.threshold_ms = corr_.threshold_ms();
  h_.kernel_threshold_ms = Tuning::ns_to_ms(det_.engine().threshold_ns());
  h_.loops_by_kind = {};
  h_.monitored_loops = 0;
  h_.in_iteration.clear();
  for (const ls_loop& l : det_.last_scan()) {
    if (!corr_.watches(l.tgid)) continue;
    h_.monitored_loops++;
    h_.loops_by_kind[static_cast<std::size_t>(corr_.loop_kind_of(l.tgid))]++;
    if (l.iter_start_ns) h_.in_iteration.push_back({l.tgid, l.tid, l.iter_start_ns, corr_.service_of(l.tgid)});
  }
  h_.watched_processes = corr_.watched_processes();
  h_.ongoing_stalls = corr_.ongoing_count();
  h_.longest_ongoing_ns = corr_.longest_ongoing_ns();
  h_.lost_events = corr_.lost();
  h_.samples_over_budget = det_.samples_over_budget();
  h_.stack_skipped_repeat = det_.stack_budget().skipped_repeat();
  h_.stack_skipped_budget = det_.stack_budget().skipped_budget();
  if (fresh || !h_.counters_read_ns || now_ns - h_.counters_read_ns >= kCountersEveryNs) {
    read_counters(now_ns);
    h_.loops_by_service.clear();
    for (const ls_loop& l : det_.last_scan())
      if (corr_.watches(l.tgid)) h_.loops_by_service[corr_.service_of(l.tgid)]++;
  }
  return h_;
}

}  // namespace loopstall
