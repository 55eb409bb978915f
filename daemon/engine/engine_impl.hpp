// Private state of loopstall::Engine, shared by the files that split its
// lifecycle by concern (programs.cpp, maps.cpp, ringbuf.cpp, stats.cpp).
#pragma once

#include <bpf/libbpf.h>

#include <algorithm>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "loopstall.skel.h"
#include "loopstall/engine.hpp"

namespace loopstall {

// A BPF_F_MMAPABLE array map mapped into our address space.
class MappedArray {
 public:
  MappedArray() = default;
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;
  ~MappedArray();
  void map(bpf_map* m, bool writable);  // throws EngineError
  template <typename T>
  T* at(std::size_t i) const {
    return reinterpret_cast<T*>(static_cast<char*>(base_) + i * elem_size_);
  }
  std::size_t size() const { return entries_; }

 private:
  void* base_ = nullptr;
  std::size_t bytes_ = 0, elem_size_ = 0, entries_ = 0;
};

void setup_sampler(Engine::Impl& impl, std::uint64_t period_ns);

struct Engine::Impl {
  loopstall_bpf* skel = nullptr;
  ring_buffer* rb = nullptr;
  const EventHandler* handler = nullptr;  // valid during poll()
  // This poll's records handled, and when it handled its first one.
  int poll_handled = 0;
  std::uint64_t poll_first_ns = 0;
  int attached = 0;
  std::vector<std::pair<std::string, int>> attach_failures;
  int ncpus = 1;
  // The mmap'ed arrays userspace reads and writes without syscalls.
  MappedArray loops;        // struct ls_loop per slot
  MappedArray proc_ignore;  // one bit per tgid
  MappedArray loop_slots;   // tid -> slot, four u16 per u64
  // Slots userspace took back (a process it ignores), returned to
  // free_slots only after a grace period: a BPF hook on another CPU may
  // still hold a pointer into the slot it looked up just before.
  std::vector<std::pair<std::uint32_t, std::uint64_t>> slots_to_free;  // (slot, released at)
  // cpu-clock sampler: one perf event + link per CPU.
  std::vector<int> perf_fds;
  std::vector<bpf_link*> perf_links;
  // USDT gc probes: links, and every file (dev:inode) tried, attached or not.
  std::vector<bpf_link*> usdt_links;
  // gc__start/gc__done attached as uprobe_multi links (kernel >= 6.6): only
  // CAP_BPF + CAP_PERFMON needed, where a uprobe perf event needs
  // CAP_SYS_ADMIN. Closing the fd detaches.
  bool usdt_multi = false;
  std::vector<int> usdt_link_fds;
  std::set<std::string> usdt_tried;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();
};

void open_ring_buffer(Engine::Impl& impl);
// Before load: makes the gc programs uprobe_multi programs where the kernel
// has them (usdt_multi).
void prepare_gc_probes(Engine::Impl& impl);

// One past the highest loops slot ever handed out (slot 0 is unused).
inline std::size_t slots_in_use(const Engine::Impl& impl) {
  return std::min<std::size_t>(__atomic_load_n(&impl.skel->data->slots_hwm, __ATOMIC_ACQUIRE), impl.loops.size());
}

// Returns slots released long enough ago to free_slots.
void free_released_slots(Engine::Impl& impl, std::uint64_t now_ns);

// errno-style libbpf result -> EngineError with context.
[[noreturn]] void throw_bpf_error(const std::string& what, int err);

}  // namespace loopstall
