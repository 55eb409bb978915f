// The BPF side's lifecycle, owned by userspace: feature probing, loading and
// attaching programs, the maps userspace reads and writes, the ring buffer and
// the BPF-side counters. One Engine per process; what each call does is
// documented in LoopEngine (loop_engine.hpp).
#pragma once

#include <memory>

#include "loopstall/loop_engine.hpp"

namespace loopstall {

// Checks that this host can run the BPF programs; throws EngineError naming
// what is missing. Mounts tracefs when it is not mounted.
void probe_features();

class Engine final : public LoopEngine {
 public:
  explicit Engine(const EngineOptions& opt);  // probes, loads and attaches
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  int poll(int timeout_ms, const EventHandler& on_event) override;
  void set_threshold_ns(std::uint64_t ns) override;
  std::uint64_t threshold_ns() const override;
  void set_sample_period_ns(std::uint64_t ns) override;
  bool attach_gc_probes(const std::string& binary) override;
  void set_proc_state(std::uint32_t tgid, ls_proc_state state) override;
  void insert_proc_state(std::uint32_t tgid, ls_proc_state state) override;
  std::vector<std::uint32_t> pending_procs() override;
  std::vector<std::uint32_t> known_procs() override;
  void forget_proc(std::uint32_t tgid) override;
  void set_py_thread(std::uint32_t tid, const ls_py_thread& t) override;
  void forget_py_thread(std::uint32_t tid) override;
  bool adopt_loop(const ls_loop& init) override;
  bool is_loop(std::uint32_t tid) const override;
  void release_loops(std::uint32_t tgid) override;
  std::optional<ls_loop> find_loop(std::uint32_t tid) const override;
  std::uint64_t scan_loops(std::vector<ls_loop>& out) override;
  BpfStats stats() override;
  MapOccupancy map_occupancy() override;
  std::vector<ProgramStats> program_stats() override;
  const std::vector<std::pair<std::string, int>>& attach_failures() const override;
  int attached_programs() const override;

  struct Impl;  // opaque; defined in daemon/engine/engine_impl.hpp

 private:
  std::unique_ptr<Impl> impl_;
};

// The engine of the binaries (an EngineFactory).
std::unique_ptr<LoopEngine> make_bpf_engine(const EngineOptions& opt);

}  // namespace loopstall
