// What the detector needs of the BPF side, as an interface: the real one is
// Engine (engine.hpp, libbpf), unit tests drive the Detector with a fake.
// Plain types only: nothing here needs libbpf.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "loopstall/loopstall.h"
#include "loopstall/tuning.hpp"

namespace loopstall {

// A failure the user can act on (not root, no BTF, ...): print what() and exit 1.
class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EngineOptions {
  // Threshold (lowered at run time to what the consumers want) and the
  // cpu-clock sampling period of loop threads inside long iterations (fixed
  // period: frequency mode under-samples); sample_hz 0 disables sampling.
  Tuning tuning;
  std::uint32_t ringbuf_bytes = 16u << 20;
  // Loop threads tracked at once (slots of the loops array, at most 65535).
  std::uint32_t max_loops = 4096;
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

class LoopEngine {
 public:
  // Raw ring buffer record: type from ls_event_hdr, bytes valid for the call.
  using EventHandler = std::function<void(const void* data, std::size_t size)>;

  virtual ~LoopEngine() = default;

  // Waits up to timeout_ms for events; returns how many were handled, or -1
  // when interrupted by a signal. Handles records for at most ~10 ms: under
  // a flood the caller's loop keeps turning (records left wait in the ring).
  virtual int poll(int timeout_ms, const EventHandler& on_event) = 0;

  // Also moves the sampler's start (half the threshold: a stall just over
  // the threshold still gets samples).
  virtual void set_threshold_ns(std::uint64_t ns) = 0;
  // What the kernel reports at now (the lowest threshold of all consumers).
  virtual std::uint64_t threshold_ns() const = 0;
  // Replaces the sampler with one of this period (0: no sampling).
  virtual void set_sample_period_ns(std::uint64_t ns) = 0;
  // Attaches the CPython gc__start/gc__done USDT probes of one binary
  // (python executable or libpython) for every process that maps it. Once
  // per file; returns false when the file has no such probes.
  virtual bool attach_gc_probes(const std::string& binary) = 0;
  // Answers a NEW_PROC event (only while the process's entry exists).
  virtual void set_proc_state(std::uint32_t tgid, ls_proc_state state) = 0;
  // Decides ahead for a process that has not called epoll_wait yet.
  virtual void insert_proc_state(std::uint32_t tgid, ls_proc_state state) = 0;
  // Processes still waiting for a decision (their NEW_PROC event was lost).
  virtual std::vector<std::uint32_t> pending_procs() = 0;
  // All entries in the procs map (for reconciliation with /proc).
  virtual std::vector<std::uint32_t> known_procs() = 0;
  virtual void forget_proc(std::uint32_t tgid) = 0;
  // How the sampler walks the Python frames of loop thread tid.
  virtual void set_py_thread(std::uint32_t tid, const ls_py_thread& t) = 0;
  virtual void forget_py_thread(std::uint32_t tid) = 0;
  // Makes tid a loop thread in the state `init` describes (a loop found
  // mid-iteration, or asleep in epoll_wait, when we attached): init.tid,
  // tgid, iter_start_ns (0: idle in epoll_wait), last_ts_ns, run_state,
  // cur_syscall, adopted_start_ns. False if tid already is a loop thread
  // or no slot is free.
  virtual bool adopt_loop(const ls_loop& init) = 0;
  // Whether tid is a loop thread now (one load, no syscall).
  virtual bool is_loop(std::uint32_t tid) const = 0;
  // Stops tracking every loop thread of tgid (a process userspace decided
  // to ignore after BPF gave its first epoll_wait thread a slot).
  virtual void release_loops(std::uint32_t tgid) = 0;
  // The current state of one loop thread (mmap, no syscall); nullopt if
  // tid is not a loop thread now.
  virtual std::optional<ls_loop> find_loop(std::uint32_t tid) const = 0;
  // Snapshot of every loop thread's state (read through mmap: no syscall).
  // Returns the CLOCK_MONOTONIC time the snapshot stands for.
  virtual std::uint64_t scan_loops(std::vector<ls_loop>& out) = 0;
  virtual BpfStats stats() = 0;
  // Counts every map entry (a few batched syscalls): once a second at most.
  virtual MapOccupancy map_occupancy() = 0;
  virtual std::vector<ProgramStats> program_stats() = 0;
  // Optional programs that could not be attached (name -> errno), e.g.
  // epoll_pwait2 on kernels without it.
  virtual const std::vector<std::pair<std::string, int>>& attach_failures() const = 0;
  virtual int attached_programs() const = 0;
};

// Makes the engine of a detector (the BPF one in the binaries).
using EngineFactory = std::function<std::unique_ptr<LoopEngine>(const EngineOptions&)>;

}  // namespace loopstall
