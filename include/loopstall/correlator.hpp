// The correlator turns BPF output (ring buffer events, loops-map scans) into
// stall reports: it decides which processes are watched, builds reports with
// process context, emits ongoing reports for long/hung iterations and keeps
// per-process iteration totals.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "loopstall/clock.hpp"
#include "loopstall/evidence.hpp"
#include "loopstall/loopstall.h"
#include "loopstall/procinfo.hpp"
#include "loopstall/service_name.hpp"
#include "loopstall/sink.hpp"
#include "loopstall/tuning.hpp"

namespace loopstall {

struct Selection {
  std::set<std::uint32_t> pids;  // empty: every process
  bool all_loops = false;        // also non-Python epoll loops
  // Further policy (config include/exclude rules); empty: accept.
  std::function<bool(const ProcInfo&)> accept;
  // How watched processes are named; null: ServiceNaming::defaults().
  std::shared_ptr<const ServiceNaming> naming;
};

using ProcInspector = std::function<std::optional<ProcInfo>(std::uint32_t pid)>;

class Correlator {
 public:
  // Ongoing reports repeat this often while a stall lasts (contract: <= 10 s).
  static constexpr std::uint64_t kOngoingRepeatNs = 5'000'000'000ULL;
  // An ongoing stall whose final event never came (dropped, or the process
  // died) is forgotten after this long out of sight.
  static constexpr std::uint64_t kForgetNs = 2'000'000'000ULL;

  Correlator(Selection sel, double threshold_ms, Sink& sink, ProcInspector inspect = {}, WallClock clock = {});

  // Keep per-process totals of exited processes for summary() (a capture
  // wants them; the daemon, with processes coming and going for months,
  // must not grow without bound).
  void keep_exited_totals(bool keep) { keep_exited_totals_ = keep; }
  void set_selection(Selection sel) { sel_ = std::move(sel); }
  std::uint64_t lost() const { return lost_; }
  // Longest iteration in progress among watched loops in the last scan (ns).
  std::uint64_t longest_ongoing_ns() const { return longest_ongoing_ns_; }

  // LS_PROC_WATCH or LS_PROC_IGNORE for a process that called epoll_wait.
  // Events of processes this correlator did not decide to watch are ignored
  // (several correlators may share one kernel-side detector).
  ls_proc_state classify(std::uint32_t pid);
  // The same from what another consumer, naming services by `named_by`,
  // knows about the process (no /proc reads unless the naming differs).
  ls_proc_state classify(std::uint32_t pid, const ProcInfo& known, const ServiceNaming& named_by);
  // How this correlator names services.
  const ServiceNaming& naming() const { return sel_.naming ? *sel_.naming : ServiceNaming::defaults(); }
  bool watches(std::uint32_t pid) const { return watched_.count(pid) > 0; }
  // What this correlator knows about a process (nullptr if nothing).
  const ProcInfo* known_process(std::uint32_t pid) const {
    auto it = procs_.find(pid);
    return it == procs_.end() ? nullptr : &it->second;
  }
  // The service of a process (service_name(), "" if unknown).
  std::string service_of(std::uint32_t pid) const;
  // Loop kind of a watched process (Epoll when unknown).
  LoopKind loop_kind_of(std::uint32_t pid) const;
  // What a loop thread's Python stack showed while it waited in epoll_wait
  // (frameworks.hpp). The first answer for a process stands; a new program
  // image (exec) starts over.
  void set_stack_loop(std::uint32_t pid, LoopKind k);
  std::size_t watched_processes() const { return watched_.size(); }

  // Stall evidence (stacks), already read by the Detector (and kept, not
  // copied: a deep stack is hundreds of strings). Iteration identified by
  // (tid, iter_start_ns).
  void on_sample(std::uint32_t pid, std::uint32_t tid, std::uint64_t iter_start_ns, StackSample s);
  void on_block(std::uint32_t pid, std::uint32_t tid, std::uint64_t iter_start_ns, std::uint64_t block_start_ns,
                std::uint64_t blocked_ns, std::optional<StackSample> stacks);
  // Iterations that have gone on for this long get their blocks captured
  // (the same age at which BPF starts sampling).
  std::uint64_t evidence_after_ns() const { return Tuning::evidence_after_ns_of(threshold_ns()); }
  void set_sample_period_ms(double ms) { sample_period_ms_ = ms; }
  std::size_t evidence_count() const { return evidence_.size(); }
  // The process's interpreter is shutting down: its loop's last, long
  // "iteration" is teardown (freeing the heap, joining threads), not a stall
  // the service's requests waited for. Nothing more is reported for it.
  void interpreter_exiting(std::uint32_t pid) { exiting_.insert(pid); }
  bool exiting(std::uint32_t pid) const { return exiting_.count(pid) > 0; }
  void on_stall(const ls_stall_event& e);
  void on_loop_exit(const ls_stall_event& e);
  // A snapshot of the loops map taken at now_ns (CLOCK_MONOTONIC).
  void on_scan(const std::vector<ls_loop>& loops, std::uint64_t now_ns);
  // Report every stall in progress once more and count it in the summary
  // (at the end of a capture: nothing pending is lost).
  void flush_ongoing(const std::vector<ls_loop>& loops, std::uint64_t now_ns);
  // Counters of loops that exist when this correlator starts: only what
  // happens from now on is counted.
  void set_baseline(const std::vector<ls_loop>& loops);
  // Every pid this correlator holds anything about.
  void known_pids(std::unordered_set<std::uint32_t>& out) const;
  void add_lost(std::uint64_t n) { lost_ += n; }
  void forget_process(std::uint32_t pid);

  double threshold_ms() const { return threshold_ms_; }
  std::uint64_t threshold_ns() const { return Tuning::ms_to_ns(threshold_ms_); }
  void set_threshold_ms(double ms) { threshold_ms_ = ms; }
  Summary summary(double elapsed_s) const;
  std::size_t ongoing_count() const { return ongoing_.size(); }

 private:
  // One loop iteration (what a stall_id names), as a map key: no string to
  // format and hash per loop per scan.
  struct IterationKey {
    std::uint32_t tid = 0;
    std::uint64_t iter_start_ns = 0;
    bool operator==(const IterationKey&) const = default;
  };
  struct IterationKeyHash {
    std::size_t operator()(const IterationKey& k) const {
      return std::hash<std::uint64_t>{}(k.iter_start_ns * 0x9E3779B97F4A7C15ULL ^ k.tid);
    }
  };
  struct Ongoing {
    std::uint32_t pid = 0;
    std::uint64_t last_report_ns = 0;
    std::uint64_t last_seen_ns = 0;
  };
  struct Evidence {
    StallEvidence seen;
    std::uint64_t last_touch_ns = 0;
  };
  // A loop thread's cumulative BPF counters as last accounted.
  struct ThreadCounters {
    std::uint32_t pid = 0;
    std::uint64_t iterations = 0;
    std::array<std::uint64_t, LS_HIST_BUCKETS> hist{};
    std::uint64_t busy_on_cpu_ns = 0, busy_blocked_ns = 0, busy_runq_ns = 0;
    std::uint64_t reads = 0, read_bytes = 0;
    bool counted = false;  // in its process's loop_threads
  };

  const ProcInfo* process(std::uint32_t pid);
  ls_proc_state decide(std::uint32_t pid, const ProcInfo* p);
  // An ongoing report borrows its evidence's frames: give_back() after use.
  StallReport make_report(const ls_loop& l, std::uint64_t end_ns, bool ongoing, const char* comm);
  void give_back(StallReport& ongoing, const ls_loop& l);
  void account_iterations(const ls_loop& l);

  Selection sel_;
  double threshold_ms_;
  Sink& sink_;
  ProcInspector inspect_;
  bool real_proc_;  // reading the real /proc (no injected inspector)
  WallClock clock_;
  std::unordered_map<std::uint32_t, ProcInfo> procs_;
  std::set<std::uint32_t> watched_;
  std::set<std::uint32_t> exiting_;                            // interpreters past Py_Finalize
  std::unordered_map<std::uint32_t, ThreadCounters> threads_;  // by tid
  std::unordered_map<IterationKey, Ongoing, IterationKeyHash> ongoing_;
  std::unordered_map<IterationKey, Evidence, IterationKeyHash> evidence_;
  double sample_period_ms_ = Tuning{}.sample_period_ms();
  std::uint64_t last_scan_ns_ = 0;                 // evidence is timed in scan time
  std::map<std::uint32_t, ProcessTotals> totals_;  // by pid
  std::uint64_t lost_ = 0;
  std::uint64_t longest_ongoing_ns_ = 0;
  bool keep_exited_totals_ = true;
};

}  // namespace loopstall
