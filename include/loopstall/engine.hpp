// The BPF side's lifecycle, owned by userspace: feature probing, loading and
// attaching programs, the maps userspace reads and writes, the ring buffer and
// the BPF-side counters. One Engine per process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "loopstall/loopstall.h"

namespace loopstall {

// A failure the user can act on (not root, no BTF, ...): print what() and exit 1.
class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks that this host can run the BPF programs; throws EngineError naming
// what is missing. Mounts tracefs when it is not mounted.
void probe_features();

struct EngineOptions {
  std::uint64_t threshold_ns = 100'000'000ULL;
  std::uint32_t ringbuf_bytes = 16u << 20;
  // Loop threads tracked at once (slots of the loops array, at most 65535).
  std::uint32_t max_loops = 4096;
  // cpu-clock sampling period of loop threads inside long iterations
  // (fixed period: frequency mode under-samples); 0 disables sampling.
  std::uint64_t sample_period_ns = 1'000'000'000ULL / 99;  // 99 Hz: not in step with 100 Hz timers
};

struct BpfStats {
  std::uint64_t ringbuf_drops = 0;
  std::uint64_t loops_full = 0;
  std::uint64_t procs_full = 0;
  std::uint64_t iterations = 0;
  std::uint64_t stalls = 0;
  std::uint64_t samples = 0;
  std::uint64_t samples_skipped = 0;
  std::uint64_t state_repairs = 0;  // switch-ins the tracer missed (see resync_running)
};

// Entries in use in the BPF maps that grow with what runs on the host: loop
// slots (threads measured, of 4096), procs (processes that called
// epoll_wait, of 16384) and py_threads (loop threads whose Python frames
// the sampler walks, of 4096). Flat over time on a steady host.
struct MapOccupancy {
  std::uint64_t loops = 0;
  std::uint64_t procs = 0;
  std::uint64_t py_threads = 0;
};

// Kernel-side cost of one BPF program (zeros unless the host enables
// kernel.bpf_stats_enabled).
struct ProgramStats {
  std::string name;
  std::uint64_t runs = 0;
  std::uint64_t run_time_ns = 0;
};

class Engine {
 public:
  // Raw ring buffer record: type from ls_event_hdr, bytes valid for the call.
  using EventHandler = std::function<void(const void* data, std::size_t size)>;

  explicit Engine(const EngineOptions& opt);  // probes, loads and attaches
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Waits up to timeout_ms for events; returns how many were handled, or -1
  // when interrupted by a signal. Handles records for at most ~10 ms: under
  // a flood the caller's loop keeps turning (records left wait in the ring).
  int poll(int timeout_ms, const EventHandler& on_event);

  // Also moves the sampler's start (half the threshold: a stall just over
  // the threshold still gets samples).
  void set_threshold_ns(std::uint64_t ns);
  // What the kernel reports at now (the lowest threshold of all consumers).
  std::uint64_t threshold_ns() const;
  // Replaces the sampler with one of this period (0: no sampling).
  void set_sample_period_ns(std::uint64_t ns);
  // Attaches the CPython gc__start/gc__done USDT probes of one binary
  // (python executable or libpython) for every process that maps it. Once
  // per file; returns false when the file has no such probes.
  bool attach_gc_probes(const std::string& binary);
  // Answers a NEW_PROC event (only while the process's entry exists).
  void set_proc_state(std::uint32_t tgid, ls_proc_state state);
  // Decides ahead for a process that has not called epoll_wait yet.
  void insert_proc_state(std::uint32_t tgid, ls_proc_state state);
  // Processes still waiting for a decision (their NEW_PROC event was lost).
  std::vector<std::uint32_t> pending_procs();
  // All entries in the procs map (for reconciliation with /proc).
  std::vector<std::uint32_t> known_procs();
  void forget_proc(std::uint32_t tgid);
  // How the sampler walks the Python frames of loop thread tid.
  void set_py_thread(std::uint32_t tid, const ls_py_thread& t);
  void forget_py_thread(std::uint32_t tid);
  // Makes tid a loop thread in the state `init` describes (a loop found
  // mid-iteration, or asleep in epoll_wait, when we attached): init.tid,
  // tgid, iter_start_ns (0: idle in epoll_wait), last_ts_ns, run_state,
  // cur_syscall, adopted_start_ns. False if tid already is a loop thread
  // or no slot is free.
  bool adopt_loop(const ls_loop& init);
  // Whether tid is a loop thread now (one load, no syscall).
  bool is_loop(std::uint32_t tid) const;
  // Stops tracking every loop thread of tgid (a process userspace decided
  // to ignore after BPF gave its first epoll_wait thread a slot).
  void release_loops(std::uint32_t tgid);
  // The current state of one loop thread (mmap, no syscall); nullopt if
  // tid is not a loop thread now.
  std::optional<ls_loop> find_loop(std::uint32_t tid) const;
  // Snapshot of every loop thread's state (read through mmap: no syscall).
  // Returns the CLOCK_MONOTONIC time the snapshot stands for.
  std::uint64_t scan_loops(std::vector<ls_loop>& out);
  BpfStats stats();
  // Counts every map entry (a few batched syscalls): once a second at most.
  MapOccupancy map_occupancy();
  std::vector<ProgramStats> program_stats();
  // Optional programs that could not be attached (name -> errno), e.g.
  // epoll_pwait2 on kernels without it.
  const std::vector<std::pair<std::string, int>>& attach_failures() const;
  int attached_programs() const;

  struct Impl;  // opaque; defined in daemon/engine/engine_impl.hpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace loopstall
