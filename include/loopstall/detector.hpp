// One set of BPF programs feeding any number of consumers (correlators):
// BPF -> ring buffer -> correlators -> sinks. loopstalld has its own
// correlator plus one per `loopstall capture` client; a standalone capture
// has one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "loopstall/correlator.hpp"
#include "loopstall/loop_engine.hpp"
#include "loopstall/stack_budget.hpp"
#include "loopstall/stack_source.hpp"

namespace loopstall {

class Detector {
 public:
  // Hung-loop detection granularity: ongoing reports come within
  // threshold + kScanIntervalMs (+ scheduling) of the stall's start.
  static constexpr int kScanIntervalMs = 20;

  // Drives the engine `make` builds for `opt` (BPF in the binaries, a fake
  // in unit tests); stacks come from `stacks` (default: the live processes).
  Detector(const EngineOptions& opt, const EngineFactory& make, std::unique_ptr<StackSource> stacks = nullptr);

  LoopEngine& engine() { return *engine_; }

  // Starts feeding `c` (not owned; remove() before destroying it). Decides
  // for every existing process what `c` wants, so loops sitting in
  // epoll_wait have their next iteration measured.
  void add(Correlator& c);
  void remove(Correlator& c);
  // A new sampling period (0: none); stacks of stalls in flight keep their
  // samples, weighed with the new period.
  void set_sample_period_ns(std::uint64_t ns);
  // Call after a consumer's threshold changed.
  void update_threshold();
  // Decides again for every process (a consumer's selection changed).
  void reclassify(Correlator& c);

  // Waits up to max_wait_ms for events, then scans/sweeps when due.
  // Returns false when interrupted by a signal.
  bool step(int max_wait_ms);
  // Reports what is pending to `c`: events in the ring, stalls in progress.
  void flush(Correlator& c);

  const std::vector<ls_loop>& last_scan() const { return loops_; }
  std::uint64_t scans() const { return scans_; }
  // On-CPU samples not read because the stack budget was spent.
  std::uint64_t samples_over_budget() const { return budget_.samples_skipped_budget(); }
  // Which stall stacks are read in a storm (stack_budget.hpp).
  void set_stack_policy(const StackBudget::Policy& p) { budget_.set_policy(p); }
  const StackBudget& stack_budget() const { return budget_; }

 private:
  void dispatch(const void* data, std::size_t size);
  ls_proc_state decide(std::uint32_t pid);
  // Applies a decision about a process that called epoll_wait (BPF gave
  // its asking thread a slot already).
  void apply_decision(std::uint32_t pid, ls_proc_state st);
  // Threads of a watched process BPF has not seen enter an iteration: the
  // ones asleep in epoll_wait now, and a main thread inside a loop's
  // iteration (hung before we attached).
  void adopt_loops(std::uint32_t pid);
  void forget_gone_processes();
  // The loops scan (ongoing reports, block stacks), when it is due.
  void scan_if_due();
  void watch_gc(std::uint32_t pid);
  void on_sample(const ls_sample_event& e, std::size_t size);
  void capture_blocks(std::uint64_t now_ns);
  void register_python_threads(std::uint64_t now_ns);
  struct PyThreadSeen;
  void identify_framework(const ls_loop& l, PyThreadSeen& seen, std::uint64_t now_ns);
  void identify_framework_now(std::uint32_t pid, std::uint32_t tid);
  void name_framework(std::uint32_t pid, const std::vector<PyFrame>& frames);
  bool framework_unknown(std::uint32_t pid) const;
  void check_exiting(std::uint64_t now_ns);
  bool watched(std::uint32_t pid) const;
  // A consumer other than c that watches pid (and knows it), if any.
  const Correlator* watcher_besides(const Correlator& c, std::uint32_t pid) const;
  std::uint64_t evidence_after_ns() const;
  // Hands v to every consumer: a copy to each but the last, which takes it.
  template <typename T, typename Give>
  void share(T& v, Give&& give) {
    for (std::size_t i = 0; i < consumers_.size(); ++i)
      give(*consumers_[i], i + 1 == consumers_.size() ? std::move(v) : T(v));
  }
  void sweep();
  void account_drops();

  // The block episode of a loop thread last captured (or tried).
  struct BlockSeen {
    std::uint64_t iter_start_ns = 0, block_start_ns = 0;
    bool captured = false;
    bool skip_counted = false;  // its read was skipped (counted once per episode)
  };
  std::unique_ptr<LoopEngine> engine_;
  std::unique_ptr<StackSource> stacks_;
  std::unordered_map<std::uint32_t, BlockSeen> blocks_;  // by tid
  // Loop threads whose py_threads entry is written (true), or when it was
  // last tried (a thread state not found yet, or not CPython).
  struct PyThreadSeen {
    std::uint32_t pid = 0;
    bool registered = false;
    std::uint64_t tried_ns = 0;
    // The framework its Python stack showed in epoll_wait (identify_framework).
    std::optional<LoopKind> framework;
    std::uint64_t framework_retry_ns = 0;  // not read again before
  };
  std::unordered_map<std::uint32_t, PyThreadSeen> py_threads_;  // by tid
  StackBudget budget_;
  double sample_period_ms_;
  std::vector<Correlator*> consumers_;
  std::vector<ls_loop> loops_;
  LoopEngine::EventHandler handler_;
  std::uint64_t next_scan_ = 0, next_sweep_ = 0, drops_seen_ = 0, scans_ = 0;
  bool scanning_ = false;
};

}  // namespace loopstall
