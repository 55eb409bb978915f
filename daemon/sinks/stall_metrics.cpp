#include "loopstall/stall_metrics.hpp"

#include "loopstall/phase_times.hpp"
#include "loopstall/printable.hpp"

namespace loopstall {
namespace {

// Where each log2 bucket of the BPF histogram lands among kIterationBuckets
// (the first bound at or above its upper end; the last slot is +Inf).
std::array<std::size_t, kHistBuckets> iteration_bucket_index() {
  std::array<std::size_t, kHistBuckets> out{};
  for (std::size_t i = 0; i < kHistBuckets; ++i) {
    std::size_t b = 0;
    while (b < kIterationBuckets.size() && hist_bucket_upper_s(i) > kIterationBuckets[b]) ++b;
    out[i] = b;
  }
  return out;
}

}  // namespace

std::string ServiceLabels::operator()(const std::string& service) {
  std::string v = valid_utf8(service);
  if (seen_.count(v)) return v;
  if (seen_.size() >= max_) return "other";
  seen_.insert(v);
  return v;
}

struct StallMetrics::Fixed {
  Gauge *monitored, *ongoing, *longest_ongoing, *watched;
  std::array<Gauge*, kLoopKinds.size()> loops;
  Counter *lost, *loops_full, *procs_full;
  Gauge *loops_entries, *procs_entries, *py_threads_entries;
  Counter *bpf_iterations, *bpf_samples, *bpf_samples_skipped, *over_budget, *state_repairs;
  Counter *skipped_repeat, *skipped_budget;
  Gauge* bpf_stats_enabled;
  Counter* process_cpu;
  Gauge *process_rss, *process_start, *process_fds;
};

StallMetrics::StallMetrics(Metrics& m, std::size_t max_services, const std::string& version)
    : services_(max_services),
      stalls_(m.counter("loopstall_stalls_total", "Event-loop stalls (iterations >= threshold), by main cause")),
      stall_durations_(m.histogram("loopstall_stall_duration_seconds", "Duration of finished stalls")),
      stall_time_(m.counter("loopstall_stall_time_seconds_total", "Time spent in stalls, by component")),
      blocked_(m.counter("loopstall_blocked_seconds_total", "Time stalls were blocked in a syscall")),
      iterations_(m.counter("loopstall_loop_iterations_total", "Event-loop iterations measured")),
      iteration_durations_(
          m.histogram("loopstall_iteration_duration_seconds",
                      "Durations of all loop iterations (from the kernel's log2 histogram; _sum is an upper bound)")),
      // Loop health (issue 13): rate() of busy time is utilisation; reads
      // over iterations is churn, read bytes over reads the size of a read.
      busy_(m.counter("loopstall_loop_busy_seconds_total",
                      "Time loop threads spent inside iterations (not waiting in epoll_wait), by run state")),
      reads_(m.counter("loopstall_loop_reads_total", "Socket receives (read, recv*) made by loop threads")),
      read_bytes_(m.counter("loopstall_loop_read_bytes_total", "Bytes the socket receives of loop threads returned")),
      monitored_(m.gauge("loopstall_monitored_loops", "Loop threads being measured now")),
      loops_(m.gauge("loopstall_loops", "Loop threads being measured now, by loop kind")),
      service_loops_(m.gauge("loopstall_service_loops",
                             "Loop threads being measured now, by service: a service's average loop "
                             "utilisation is rate(loopstall_loop_busy_seconds_total) over this")),
      ongoing_(m.gauge("loopstall_ongoing_stalls", "Loops stalled right now (iteration in progress >= threshold)")),
      longest_ongoing_(m.gauge("loopstall_longest_ongoing_stall_seconds", "Age of the longest iteration in progress")),
      watched_(m.gauge("loopstall_watched_processes", "Processes whose loops are measured")),
      lost_(m.counter("loopstall_lost_events_total",
                      "Events the BPF ring buffer dropped (full); threads not tracked are in "
                      "loopstall_bpf_map_full_total")),
      map_full_(
          m.counter("loopstall_bpf_map_full_total", "Threads or processes not tracked because a BPF map was full")),
      map_entries_(m.gauge("loopstall_bpf_map_entries",
                           "Entries in use in the BPF maps that grow with the host's processes: loops (loop "
                           "threads, of 4096), procs (processes that called epoll_wait, of 16384), py_threads (of "
                           "4096)")),
      bpf_iterations_(
          m.counter("loopstall_bpf_iterations_total", "Iterations the BPF programs measured (all consumers)")),
      bpf_samples_(m.counter("loopstall_bpf_samples_total",
                             "On-CPU samples of loop threads inside long iterations (stack evidence for stalls)")),
      bpf_samples_skipped_(
          m.counter("loopstall_bpf_samples_skipped_total",
                    "On-CPU samples not taken because the ring buffer was half full (stall events keep the rest)")),
      over_budget_(m.counter("loopstall_samples_over_budget_total",
                             "On-CPU samples left unread because the daemon's stack-reading budget (300/s) was "
                             "spent")),
      stack_skipped_(m.counter("loopstall_stack_evidence_skipped_total",
                               "Stall stack reads skipped (an on-CPU sample, or a blocked loop's stack once per "
                               "block episode): repeat (a loop's repeated stall, coalesced in the event log; its "
                               "first and longest stalls are read) or budget (over the 300 reads/s budget)")),
      coalesced_(m.counter("loopstall_events_coalesced_total",
                           "Final stall reports not written one by one to the event log but folded into a "
                           "summary event (\"coalesced\"); loopstall_stalls_total counts them all")),
      summaries_(m.counter("loopstall_event_summaries_total", "Summary events (with \"coalesced\") written")),
      ongoing_withheld_(m.counter("loopstall_events_ongoing_withheld_total",
                                  "Ongoing reports of a repeating stall not written: it ended within 1 s")),
      coalescer_full_(m.counter("loopstall_event_coalescer_full_total",
                                "Stall reports written one by one because the coalescer follows too many loops "
                                "or culprits already")),
      stacks_omitted_(m.counter("loopstall_event_stacks_omitted_total",
                                "Events written without their stacks because the event log's byte budget "
                                "(event_log_bytes_per_s) was spent")),
      state_repairs_(m.counter("loopstall_bpf_run_state_repairs_total",
                               "Switch-ins of loop threads the tracer did not see, repaired when the thread was "
                               "next seen running")),
      alerts_firing_(m.gauge("loopstall_alerts_firing", "Alerts firing now, by rule")),
      deliveries_(m.counter("loopstall_alert_deliveries_total", "Alertmanager deliveries")),
      output_dropped_(m.counter("loopstall_output_dropped_total",
                                "Records an output did not take, dropped whole: it did not keep up (queue_full) "
                                "or writing failed (write_error, e.g. disk full)")),
      attach_failures_(m.counter("loopstall_probe_attach_failures_total", "BPF programs that could not be attached")),
      bpf_stats_enabled_(m.gauge("loopstall_bpf_stats_enabled",
                                 "1 when kernel.bpf_stats_enabled=1: only then are loopstall_bpf_program_run* "
                                 "exported")),
      program_runs_(m.counter("loopstall_bpf_program_runs_total",
                              "Runs of each BPF program (absent unless sysctl kernel.bpf_stats_enabled=1)")),
      program_seconds_(
          m.counter("loopstall_bpf_program_run_seconds_total",
                    "Kernel time spent in each BPF program (absent unless sysctl kernel.bpf_stats_enabled=1)")),
      process_cpu_(m.counter("process_cpu_seconds_total", "User and system CPU time of loopstalld")),
      process_rss_(m.gauge("process_resident_memory_bytes", "Resident memory of loopstalld")),
      process_start_(m.gauge("process_start_time_seconds", "Start time of loopstalld since the epoch")),
      process_fds_(m.gauge("process_open_fds", "Open file descriptors of loopstalld")) {
  m.gauge("loopstall_build_info", "Build of the running loopstalld (value 1)")
      .Add(labels({{"version", version}}))
      .Set(1);
}

StallMetrics::~StallMetrics() = default;

void StallMetrics::set_max_services(std::size_t max) {
  services_.set_max(max);
  per_service_.clear();  // a service that was "other" may have a label of its own now
}

void StallMetrics::watch_alerts(const AlertEngine& alerts, const AlertSender* sender) {
  alerts_ = &alerts;
  sender_ = sender;
}

void StallMetrics::watch_output(const std::string& name, const OutputQueue& q) {
  outputs_.emplace_back(name, &q);
}

StallMetrics::PerService& StallMetrics::per_service(const std::string& service) {
  auto it = per_service_.find(service);
  if (it != per_service_.end()) return it->second;
  // Keyed by the name as the process gave it: whoever starts processes
  // chooses how many there are. A full cache starts over (its entries are
  // pointers to series that stay; each is found again on its next call).
  if (per_service_.size() >= kMaxCachedServices) per_service_.clear();
  const auto l = labels({{"service", services_(service)}});
  const auto state = [&](const char* st) {
    auto with = l;
    with["state"] = st;
    return &busy_.Add(with);
  };
  PerService s{&iterations_.Add(l), &iteration_durations_.Add(l, kIterationBuckets),
               state("on_cpu"),     state("blocked"),
               state("runqueue"),   &reads_.Add(l),
               &read_bytes_.Add(l)};
  return per_service_.emplace(service, s).first->second;
}

void StallMetrics::stall(const StallReport& r) {
  const PhaseTimer timer(Phase::kMetrics);
  if (r.ongoing) return;  // counted once, when finished
  const std::string svc = services_(r.service);
  stalls_.Add(labels({{"cause", std::string(to_string(r.cause))}, {"service", svc}})).Increment();
  stall_durations_.Add(labels({{"service", svc}}), kStallBuckets).Observe(r.duration_ms / 1e3);
  const auto component = [&](const char* name, double ms) {
    stall_time_.Add(labels({{"component", name}, {"service", svc}})).Increment(ms / 1e3);
  };
  component("on_cpu", r.breakdown.on_cpu_ms - r.breakdown.gc_ms);
  component("blocked", r.breakdown.blocked_ms);
  component("runqueue", r.breakdown.runqueue_ms);
  component("gc", r.breakdown.gc_ms);
  for (const auto& s : r.syscalls) blocked_.Add(labels({{"syscall", s.name}, {"service", svc}})).Increment(s.ms / 1e3);
}

void StallMetrics::iterations(std::uint32_t, const std::string& service, const IterationDelta& d) {
  const PhaseTimer timer(Phase::kMetrics);
  static const std::array<std::size_t, kHistBuckets> index = iteration_bucket_index();
  PerService& s = per_service(service);
  s.iterations->Increment(static_cast<double>(d.count));
  s.busy_on_cpu->Increment(static_cast<double>(d.busy_on_cpu_ns) / 1e9);
  s.busy_blocked->Increment(static_cast<double>(d.busy_blocked_ns) / 1e9);
  s.busy_runq->Increment(static_cast<double>(d.busy_runq_ns) / 1e9);
  s.reads->Increment(static_cast<double>(d.reads));
  s.read_bytes->Increment(static_cast<double>(d.read_bytes));
  std::vector<double>& increments = increments_;  // reused: this runs for every loop after every scan
  increments.assign(kIterationBuckets.size() + 1, 0);
  double sum = 0;
  bool any = false;
  for (std::size_t i = 0; i < d.hist.size(); ++i) {
    if (!d.hist[i]) continue;
    any = true;
    increments[index[i]] += static_cast<double>(d.hist[i]);
    sum += hist_bucket_upper_s(i) * static_cast<double>(d.hist[i]);
  }
  if (any) s.iteration_durations->ObserveMultiple(increments, sum);
}

void StallMetrics::health(const Health& h) {
  if (!fixed_) {
    fixed_ = std::make_unique<Fixed>();
    Fixed& f = *fixed_;
    f.monitored = &monitored_.Add({});
    f.ongoing = &ongoing_.Add({});
    f.longest_ongoing = &longest_ongoing_.Add({});
    f.watched = &watched_.Add({});
    for (LoopKind k : kLoopKinds)
      f.loops[static_cast<std::size_t>(k)] = &loops_.Add({{"loop", std::string(to_string(k))}});
    f.lost = &lost_.Add({});
    f.loops_full = &map_full_.Add({{"map", "loops"}});
    f.procs_full = &map_full_.Add({{"map", "procs"}});
    f.loops_entries = &map_entries_.Add({{"map", "loops"}});
    f.procs_entries = &map_entries_.Add({{"map", "procs"}});
    f.py_threads_entries = &map_entries_.Add({{"map", "py_threads"}});
    f.bpf_iterations = &bpf_iterations_.Add({});
    f.bpf_samples = &bpf_samples_.Add({});
    f.bpf_samples_skipped = &bpf_samples_skipped_.Add({});
    f.over_budget = &over_budget_.Add({});
    f.state_repairs = &state_repairs_.Add({});
    f.skipped_repeat = &stack_skipped_.Add({{"reason", "repeat"}});
    f.skipped_budget = &stack_skipped_.Add({{"reason", "budget"}});
    f.bpf_stats_enabled = &bpf_stats_enabled_.Add({});
    f.process_cpu = &process_cpu_.Add({});
    f.process_rss = &process_rss_.Add({});
    f.process_start = &process_start_.Add({});
    f.process_fds = &process_fds_.Add({});
  }
  Fixed& f = *fixed_;
  f.monitored->Set(static_cast<double>(h.monitored_loops));
  for (LoopKind k : kLoopKinds) f.loops[static_cast<std::size_t>(k)]->Set(static_cast<double>(h.loops(k)));
  f.ongoing->Set(static_cast<double>(h.ongoing_stalls));
  f.longest_ongoing->Set(static_cast<double>(h.longest_ongoing_ns) / 1e9);
  f.watched->Set(static_cast<double>(h.watched_processes));
  advance_to(*f.lost, static_cast<double>(h.lost_events));
  advance_to(*f.over_budget, static_cast<double>(h.samples_over_budget));
  advance_to(*f.skipped_repeat, static_cast<double>(h.stack_skipped_repeat));
  advance_to(*f.skipped_budget, static_cast<double>(h.stack_skipped_budget));
  if (coalescer_) {
    const EventCoalescer::Counts& c = coalescer_->counts();
    advance_to(coalesced_.Add({}), static_cast<double>(c.coalesced));
    advance_to(summaries_.Add({}), static_cast<double>(c.summaries));
    advance_to(ongoing_withheld_.Add({}), static_cast<double>(c.ongoing_withheld));
    advance_to(coalescer_full_.Add({}), static_cast<double>(c.table_full));
  }
  if (event_log_) advance_to(stacks_omitted_.Add({}), static_cast<double>(event_log_->stacks_omitted()));
  if (h.counters_read_ns == counters_seen_ns_) return;
  counters_seen_ns_ = h.counters_read_ns;  // the rest changes once a second at most
  advance_to(*f.loops_full, static_cast<double>(h.bpf.loops_full));
  advance_to(*f.procs_full, static_cast<double>(h.bpf.procs_full));
  f.loops_entries->Set(static_cast<double>(h.map_entries.loops));
  f.procs_entries->Set(static_cast<double>(h.map_entries.procs));
  f.py_threads_entries->Set(static_cast<double>(h.map_entries.py_threads));
  advance_to(*f.bpf_iterations, static_cast<double>(h.bpf.iterations));
  advance_to(*f.bpf_samples, static_cast<double>(h.bpf.samples));
  advance_to(*f.bpf_samples_skipped, static_cast<double>(h.bpf.samples_skipped));
  advance_to(*f.state_repairs, static_cast<double>(h.bpf.state_repairs));
  f.bpf_stats_enabled->Set(h.bpf_stats_enabled ? 1 : 0);
  // By bounded label: services beyond the limit add up in "other".
  for (auto& [label, g] : service_loops_by_label_) g->Set(0);
  for (const auto& [service, n] : h.loops_by_service) {
    const std::string label = services_(service);
    Gauge*& g = service_loops_by_label_[label];
    if (!g) g = &service_loops_.Add(labels({{"service", label}}));
    g->Increment(static_cast<double>(n));
  }
  for (const ProgramRuns& p : h.programs) {
    advance_to(program_runs_.Add(labels({{"program", p.name}})), static_cast<double>(p.runs));
    advance_to(program_seconds_.Add(labels({{"program", p.name}})), static_cast<double>(p.run_ns) / 1e9);
  }
  for (const std::string& probe : h.attach_failures) advance_to(attach_failures_.Add(labels({{"probe", probe}})), 1);
  advance_to(*f.process_cpu, h.self.cpu_s);
  f.process_rss->Set(h.self.rss_bytes);
  f.process_start->Set(h.self.start_time_s);
  f.process_fds->Set(h.self.open_fds);
  for (const auto& [name, q] : outputs_) {
    const OutputQueue::Counts c = q->counts();
    advance_to(output_dropped_.Add(labels({{"output", name}, {"reason", "queue_full"}})),
               static_cast<double>(c.dropped_full));
    advance_to(output_dropped_.Add(labels({{"output", name}, {"reason", "write_error"}})),
               static_cast<double>(c.write_errors));
  }
  export_alerts();
}

void StallMetrics::export_alerts() {
  if (!alerts_) return;
  const std::map<std::string, int> counts = alerts_->firing_counts();
  for (auto it = firing_.begin(); it != firing_.end();) {
    if (counts.count(it->first)) {
      ++it;
      continue;
    }
    alerts_firing_.Remove(it->second);  // its rule is gone (reload)
    it = firing_.erase(it);
  }
  for (const auto& [rule, n] : counts) {
    Gauge*& g = firing_[rule];
    if (!g) g = &alerts_firing_.Add(labels({{"alert", rule}}));
    g->Set(n);
  }
  if (sender_) {
    advance_to(deliveries_.Add({{"result", "ok"}}), static_cast<double>(sender_->delivered()));
    advance_to(deliveries_.Add({{"result", "error"}}), static_cast<double>(sender_->failed()));
  }
}

}  // namespace loopstall
