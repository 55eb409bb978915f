#include "loopstall/correlator.hpp"

#include <algorithm>
#include <cstring>

#include "loopstall/decode.hpp"
#include "loopstall/frameworks.hpp"
#include "loopstall/phase_times.hpp"

namespace loopstall {

// Sinks see the BPF histogram as IterationHist without the BPF header.
static_assert(kHistBuckets == LS_HIST_BUCKETS);

Correlator::Correlator(Selection sel, double threshold_ms, Sink& sink, ProcInspector inspect, WallClock clock)
    : sel_(std::move(sel)),
      threshold_ms_(threshold_ms),
      sink_(sink),
      // The real /proc: named by the selection's rules (an injected test
      // inspector names its processes itself).
      inspect_(inspect ? std::move(inspect) : ProcInspector([this](std::uint32_t pid) {
        auto p = inspect_process(pid);
        if (p) p->service = service_name(*p, naming());
        return p;
      })),
      real_proc_(!inspect),
      clock_(clock) {}

const ProcInfo* Correlator::process(std::uint32_t pid) {
  auto it = procs_.find(pid);
  if (it != procs_.end()) {
    // Python processes may import gevent or uvloop after their first
    // epoll_wait: look again (stalls are rare, so this costs little).
    if (it->second.python && !decided_by_modules(it->second.native_loop)) {
      if (auto fresh = inspect_(pid)) it->second.native_loop = fresh->native_loop;
    }
    return &it->second;
  }
  auto info = inspect_(pid);
  if (!info) return nullptr;
  return &procs_.emplace(pid, std::move(*info)).first->second;
}

std::string Correlator::service_of(std::uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? std::string() : it->second.service;
}

LoopKind Correlator::loop_kind_of(std::uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? LoopKind::Epoll : loop_kind(it->second);
}

void Correlator::set_stack_loop(std::uint32_t pid, LoopKind k) {
  auto it = procs_.find(pid);
  if (it != procs_.end() && !it->second.stack_loop) it->second.stack_loop = k;
}

ls_proc_state Correlator::classify(std::uint32_t pid) {
  watched_.erase(pid);
  if (!sel_.pids.empty() && !sel_.pids.count(pid)) return LS_PROC_IGNORE;
  procs_.erase(pid);  // a new decision: the image may have changed (exec)
  return decide(pid, process(pid));
}

ls_proc_state Correlator::classify(std::uint32_t pid, const ProcInfo& known, const ServiceNaming& named_by) {
  watched_.erase(pid);
  if (!sel_.pids.empty() && !sel_.pids.count(pid)) return LS_PROC_IGNORE;
  ProcInfo p = known;
  if (real_proc_ && &named_by != &naming()) p.service = service_name(p, naming());
  procs_.insert_or_assign(pid, std::move(p));
  return decide(pid, &procs_.at(pid));
}

ls_proc_state Correlator::decide(std::uint32_t pid, const ProcInfo* p) {
  if (p && !p->loopstall && (p->python || sel_.all_loops) && (!sel_.accept || sel_.accept(*p))) {
    watched_.insert(pid);
    return LS_PROC_WATCH;
  }
  procs_.erase(pid);
  return LS_PROC_IGNORE;
}

void Correlator::forget_process(std::uint32_t pid) {
  exiting_.erase(pid);
  // Evidence is by thread; a process's threads are in threads_.
  for (const auto& [thread, tc] : threads_) {
    if (tc.pid != pid) continue;
    const std::uint32_t tid = thread;  // clang 14 cannot capture a structured binding
    std::erase_if(evidence_, [&](const auto& kv) { return kv.first.tid == tid; });
  }
  procs_.erase(pid);
  watched_.erase(pid);
  if (!keep_exited_totals_) totals_.erase(pid);
  for (auto it = threads_.begin(); it != threads_.end();) {
    it = it->second.pid == pid ? threads_.erase(it) : std::next(it);
  }
}

StallReport Correlator::make_report(const ls_loop& l, std::uint64_t end_ns, bool ongoing, const char* comm) {
  const PhaseTimer timer(Phase::kReport);
  StallReport r;
  const IterationTiming t = decode_iteration(l, end_ns, ongoing);
  r.stall_id = make_stall_id(l.tid, l.iter_start_ns);
  r.pid = l.tgid;
  r.tid = l.tid;
  if (const ProcInfo* p = process(l.tgid)) {
    r.exe = p->exe;
    r.service = p->service;
    r.loop = loop_kind(*p);
    r.python_version = p->python_version;
    r.comm = p->comm;
  }
  // The loop thread's own name, in ongoing and final reports alike.
  if (comm && *comm) {
    r.comm = std::string(comm, strnlen(comm, 16));
  } else if (real_proc_) {  // not with an injected (test) inspector
    if (std::string t = thread_comm(l.tgid, l.tid); !t.empty()) r.comm = std::move(t);
  }
  r.start_unix_ns = clock_.to_unix_ns(l.iter_start_ns);
  r.start_estimated = l.adopted_start_ns != 0 && l.adopted_start_ns == l.iter_start_ns;
  r.duration_ms = t.duration_ms;
  r.threshold_ms = threshold_ms_;
  r.ongoing = ongoing;
  r.breakdown = t.breakdown;
  r.cause = classify_cause(t.breakdown);
  r.syscalls = t.syscalls;
  if (auto it = evidence_.find({l.tid, l.iter_start_ns}); it != evidence_.end()) {
    // A final report is its evidence's last use: on_stall drops it next.
    // An ongoing one borrows the frames until give_back().
    if (ongoing)
      it->second.seen.lend(r, sample_period_ms_);
    else
      std::move(it->second.seen).fill(r, sample_period_ms_);
  }
  return r;
}

void Correlator::give_back(StallReport& ongoing, const ls_loop& l) {
  if (auto it = evidence_.find({l.tid, l.iter_start_ns}); it != evidence_.end()) it->second.seen.take_back(ongoing);
}

void Correlator::on_sample(std::uint32_t pid, std::uint32_t tid, std::uint64_t iter_start_ns, StackSample s) {
  if (!watches(pid)) return;
  Evidence& e = evidence_[{tid, iter_start_ns}];
  e.seen.add_cpu_sample(std::move(s));
  e.last_touch_ns = last_scan_ns_;
}

void Correlator::on_block(std::uint32_t pid, std::uint32_t tid, std::uint64_t iter_start_ns,
                          std::uint64_t block_start_ns, std::uint64_t blocked_ns, std::optional<StackSample> stacks) {
  if (!watches(pid)) return;
  Evidence& e = evidence_[{tid, iter_start_ns}];
  e.seen.add_block(block_start_ns, blocked_ns, std::move(stacks));
  e.last_touch_ns = last_scan_ns_;
}

namespace {

// now - before for a cumulative counter; a counter that went back (the slot
// was reused) counts from zero.
std::uint64_t grown(std::uint64_t now, std::uint64_t& before) {
  const std::uint64_t d = now >= before ? now - before : now;
  before = now;
  return d;
}

}  // namespace

void Correlator::account_iterations(const ls_loop& l) {
  ThreadCounters& tc = threads_[l.tid];
  // A tid reused by another process starts from zero (a loop thread's exit
  // erases its counters). Counters behind what was accounted come from an
  // older snapshot -- a stall event queued in the ring buffer before the last
  // scan read the loops map -- and add nothing: taken for a new thread, they
  // counted every iteration since the daemon began watching into a capture.
  if (tc.pid != l.tgid)
    tc = ThreadCounters{};
  else if (l.iterations < tc.iterations || l.reads < tc.reads)
    return;
  tc.pid = l.tgid;
  ProcessTotals& pt = totals_[l.tgid];  // an idle loop is listed too (top: 0 % busy)
  if (!tc.counted) pt.loop_threads++, tc.counted = true;
  if (l.iterations == tc.iterations && l.reads == tc.reads) return;
  IterationDelta d;
  d.count = grown(l.iterations, tc.iterations);
  for (std::size_t i = 0; i < d.hist.size(); ++i) d.hist[i] = grown(l.hist[i], tc.hist[i]);
  d.busy_on_cpu_ns = grown(l.busy_on_cpu_ns, tc.busy_on_cpu_ns);
  d.busy_blocked_ns = grown(l.busy_blocked_ns, tc.busy_blocked_ns);
  d.busy_runq_ns = grown(l.busy_runq_ns, tc.busy_runq_ns);
  d.reads = grown(l.reads, tc.reads);
  d.read_bytes = grown(l.read_bytes, tc.read_bytes);
  // Named while the process is known: the summary outlives it.
  if (pt.comm.empty())
    if (auto it = procs_.find(l.tgid); it != procs_.end()) pt.comm = it->second.comm, pt.loop = loop_kind(it->second);
  const std::string& service = service_of(l.tgid);
  if (pt.service.empty()) pt.service = service;
  pt.iterations += d.count;
  for (std::size_t i = 0; i < d.hist.size(); ++i) pt.hist[i] += d.hist[i];
  pt.busy_on_cpu_ns += d.busy_on_cpu_ns;
  pt.busy_blocked_ns += d.busy_blocked_ns;
  pt.busy_runq_ns += d.busy_runq_ns;
  pt.reads += d.reads;
  pt.read_bytes += d.read_bytes;
  // The cached label: process() would re-read /proc on every scan.
  sink_.iterations(l.tgid, service, d);
}

void Correlator::on_stall(const ls_stall_event& e) {
  if (!watches(e.loop.tgid) || e.end_ns < e.loop.iter_start_ns) return;  // not ours, or garbage
  const IterationKey id{e.loop.tid, e.loop.iter_start_ns};
  if (exiting(e.loop.tgid)) {
    ongoing_.erase(id);
    evidence_.erase(id);
    return;
  }
  const bool was_ongoing = ongoing_.erase(id) > 0;
  const double dur_ms = Tuning::ns_to_ms(e.end_ns - e.loop.iter_start_ns);
  // The kernel threshold may be lower than ours (several consumers).
  if (dur_ms < threshold_ms_ && !was_ongoing) {
    evidence_.erase(id);
    return;
  }
  account_iterations(e.loop);
  StallReport r = make_report(e.loop, e.end_ns, false, e.comm);
  evidence_.erase(id);
  ProcessTotals& pt = totals_[r.pid];
  pt.comm = r.comm;
  pt.loop = r.loop;
  pt.ongoing.reset();
  pt.stalls++;
  pt.max_stall_ms = std::max(pt.max_stall_ms, r.duration_ms);
  pt.stalled_ms += r.duration_ms;
  pt.add_culprits(r);
  sink_.stall(r);
}

void Correlator::on_loop_exit(const ls_stall_event& e) {
  if (!watches(e.loop.tgid)) return;
  account_iterations(e.loop);
  threads_.erase(e.loop.tid);
}

void Correlator::on_scan(const std::vector<ls_loop>& loops, std::uint64_t now_ns) {
  const std::uint64_t threshold_ns = this->threshold_ns();
  longest_ongoing_ns_ = 0;
  last_scan_ns_ = now_ns;
  for (const ls_loop& l : loops) {
    if (!watches(l.tgid)) continue;
    account_iterations(l);
    if (l.iter_start_ns && now_ns > l.iter_start_ns)
      longest_ongoing_ns_ = std::max<std::uint64_t>(longest_ongoing_ns_, now_ns - l.iter_start_ns);
    if (!Tuning::iteration_older(l.iter_start_ns, now_ns, threshold_ns)) continue;
    if (exiting(l.tgid)) continue;
    auto [it, fresh] = ongoing_.try_emplace({l.tid, l.iter_start_ns});
    it->second.pid = l.tgid;
    it->second.last_seen_ns = now_ns;
    if (!fresh && now_ns - it->second.last_report_ns < kOngoingRepeatNs) continue;
    it->second.last_report_ns = now_ns;
    StallReport r = make_report(l, now_ns, true, nullptr);
    totals_[l.tgid].ongoing = OngoingStall{r.start_unix_ns, r.duration_ms, r.cause, culprit_summary(r)};
    sink_.stall(r);
    give_back(r, l);
  }
  // Stalls whose final report will never come (the process died, or the
  // event was dropped and counted as such in the BPF stats).
  for (auto it = ongoing_.begin(); it != ongoing_.end();) {
    if (now_ns - it->second.last_seen_ns > kForgetNs) {
      if (auto t = totals_.find(it->second.pid); t != totals_.end()) t->second.ongoing.reset();
      it = ongoing_.erase(it);
    } else {
      ++it;
    }
  }
  sink_.tick(now_ns);
  // Evidence of iterations that ended below the threshold (their samples
  // began at half of it) or whose final event was lost.
  for (auto it = evidence_.begin(); it != evidence_.end();) {
    if (it->second.last_touch_ns == 0) it->second.last_touch_ns = now_ns;  // came before the first scan
    if (now_ns > it->second.last_touch_ns && now_ns - it->second.last_touch_ns > kForgetNs) {
      it = evidence_.erase(it);
    } else {
      ++it;
    }
  }
}

void Correlator::flush_ongoing(const std::vector<ls_loop>& loops, std::uint64_t now_ns) {
  const std::uint64_t threshold_ns = this->threshold_ns();
  for (const ls_loop& l : loops) {
    if (!watches(l.tgid) || exiting(l.tgid)) continue;
    account_iterations(l);
    if (!Tuning::iteration_older(l.iter_start_ns, now_ns, threshold_ns)) continue;
    StallReport r = make_report(l, now_ns, true, nullptr);
    ProcessTotals& pt = totals_[r.pid];
    if (pt.comm.empty()) pt.comm = r.comm, pt.loop = r.loop;
    pt.in_progress++;
    pt.in_progress_max_ms = std::max(pt.in_progress_max_ms, r.duration_ms);
    pt.in_progress_ms += r.duration_ms;
    pt.add_culprits(r);
    sink_.stall(r);
    give_back(r, l);
  }
}

void Correlator::set_baseline(const std::vector<ls_loop>& loops) {
  for (const ls_loop& l : loops) {
    ThreadCounters& tc = threads_[l.tid];
    tc.pid = l.tgid;
    tc.iterations = l.iterations;
    std::copy(std::begin(l.hist), std::end(l.hist), tc.hist.begin());
    tc.busy_on_cpu_ns = l.busy_on_cpu_ns;
    tc.busy_blocked_ns = l.busy_blocked_ns;
    tc.busy_runq_ns = l.busy_runq_ns;
    tc.reads = l.reads;
    tc.read_bytes = l.read_bytes;
  }
}

void Correlator::known_pids(std::unordered_set<std::uint32_t>& out) const {
  for (const auto& [pid, p] : procs_) out.insert(pid);
  for (std::uint32_t pid : watched_) out.insert(pid);
  for (std::uint32_t pid : exiting_) out.insert(pid);
  for (const auto& [tid, tc] : threads_) out.insert(tc.pid);
  if (!keep_exited_totals_)
    for (const auto& [pid, t] : totals_) out.insert(pid);
}

Summary Correlator::summary(double elapsed_s) const {
  Summary s;
  s.elapsed_s = elapsed_s;
  s.lost_events = lost_;
  s.processes = totals_;
  for (auto& [pid, t] : s.processes) {
    if (t.comm.empty()) {
      auto it = procs_.find(pid);
      if (it != procs_.end()) {
        t.comm = it->second.comm;
        t.loop = loop_kind(it->second);
      }
    }
    if (t.service.empty()) t.service = service_of(pid);
  }
  return s;
}

}  // namespace loopstall
