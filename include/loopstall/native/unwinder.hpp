// Native (C) stacks from a StackSnapshot, unwound in userspace with
// elfutils' libdwfl from .eh_frame/.debug_frame CFI, as `perf --call-graph
// dwarf` does: Debian's libraries have neither frame pointers nor .symtab.
//
// Memory the CFI rules need comes from the snapshot's stack copy, then from
// the read-only segments of the ELF files, and only then from the live
// process (optional). A Dwfl (modules, parsed CFI) is cached per pid and
// rebuilt when the process's code mappings change (exec, dlopen, dlclose, pid
// reuse; checked through /proc/PID/stat -- start time, code and stack start,
// vsize -- then, if only vsize moved, the executable mappings' size in
// status, and only then the maps); symbol tables are shared by build-id
// across processes. Not thread-safe: one NativeUnwinder per thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loopstall/native/snapshot.hpp"
#include "loopstall/native/symbolizer.hpp"
#include "loopstall/stall.hpp"

namespace loopstall::native {

struct UnwoundFrame {
  std::uint64_t pc = 0;     // the instruction (innermost) or the return address
  bool activation = false;  // pc is the instruction itself, not a return address
  bool recovered = false;   // reached by guessing a register that was not captured
  // symbol: "" when unknown. module: the mapped file as /proc/PID/maps names
  // it ("/x.so (deleted)", "[vdso]"; "" when anonymous, e.g. JIT code). offset: the address in the module's
  // own ELF address space, as `addr2line -e module` takes it (return addresses
  // minus 1, so it names the call site); the absolute address when there is no
  // module.
  NativeFrame frame;
  // Where that address lies in the module *file* (the contract's
  // native_stack[].offset), from the process's mapping: it differs from
  // frame.offset for non-PIE executables. frame.offset when the module is
  // not a regular file that is still there (anonymous, [vdso], deleted).
  std::uint64_t file_offset = 0;
};

class DwflProcess;

class NativeUnwinder {
 public:
  struct Options {
    // Cached Dwfls (LRU). Above the number of processes that stall in turn
    // an LRU misses every time (a storm of 50 workers rebuilt a Dwfl for every
    // report at 32); each holds ~1.2 MiB (bench --only storm: RSS 66 -> 88 MiB).
    std::size_t max_processes = 128;
    bool read_live_memory = true;  // fall back to process_vm_readv
    // Separate debug files (/usr/lib/debug/.build-id, from -dbgsym
    // packages) name static functions when installed. Never debuginfod.
    bool use_debug_files = true;
  };
  struct Stats {
    std::uint64_t unwinds = 0;
    std::uint64_t cache_hits = 0;
    std::uint64_t dwfl_builds = 0;
    std::uint64_t evictions = 0;
    std::size_t last_stack_bytes_used = 0;  // of the snapshot, by the last unwind
  };

  NativeUnwinder();
  explicit NativeUnwinder(Options options);
  ~NativeUnwinder();
  NativeUnwinder(const NativeUnwinder&) = delete;
  NativeUnwinder& operator=(const NativeUnwinder&) = delete;

  // Innermost first; empty or partial when the process is gone, the snapshot
  // is garbage, or code has no CFI.
  std::vector<NativeFrame> unwind(pid_t pid, const StackSnapshot& snap, std::size_t max_frames = 64);
  std::vector<UnwoundFrame> unwind_frames(pid_t pid, const StackSnapshot& snap, std::size_t max_frames = 64);

  // Offline replay: the process is described by the text of its maps file
  // (a recording); memory comes only from the snapshot and the ELF files
  // found at the mapped paths. No separate debug files, so a replay names
  // the same symbols whether or not -dbgsym packages are installed. Nothing
  // is cached.
  std::vector<UnwoundFrame> unwind_recorded(std::string_view maps_text, const StackSnapshot& snap,
                                            std::size_t max_frames = 64);

  // Drops the cached Dwfl of an exited process.
  void forget(pid_t pid);
  std::size_t cached_processes() const { return cache_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Probe {
    std::uint64_t starttime = 0, vsize = 0, startcode = 0, startstack = 0;
    bool operator==(const Probe&) const = default;
  };
  struct Entry {
    std::unique_ptr<DwflProcess> process;
    std::uint64_t code_hash = 0;  // of the code mappings the Dwfl was built from
    // /proc/PID/stat's probe and the executable mappings' size as of the
    // last maps read: while they hold, the maps are not read again.
    Probe probe;
    std::uint64_t exec_kb = 0;
    std::uint64_t last_use = 0;
  };
  static std::optional<Probe> read_probe(pid_t pid);
  static bool same_code(pid_t pid, Entry& e, const Probe& now);
  DwflProcess* process_for(pid_t pid);
  std::vector<UnwoundFrame> run(DwflProcess& p, const StackSnapshot& snap, std::size_t max_frames);

  Options options_;
  Stats stats_;
  std::uint64_t tick_ = 0;
  std::unordered_map<pid_t, Entry> cache_;
  ElfSymbolizer symbolizer_;
};

}  // namespace loopstall::native
