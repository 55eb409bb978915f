// The Python stack of one thread of another process, for CPython 3.8 .. 3.13:
//   auto py = loopstall::python::PyProcess::attach(pid);
//   if (py) for (const auto& f : py->stack(tid)) ...   // innermost first
// The target keeps running: a stack is a best-effort snapshot, and a frame
// that changes under us ends the walk early rather than producing garbage.
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loopstall/loopstall.h"
#include "loopstall/process_memory.hpp"
#include "loopstall/python/code_resolver.hpp"
#include "loopstall/python/frame_walker.hpp"
#include "loopstall/python/offsets.hpp"
#include "loopstall/python/runtime_locator.hpp"
#include "loopstall/stall.hpp"

namespace loopstall::python {

class PyProcess {
 public:
  // nullopt if pid is not a supported, initialized CPython (or is gone).
  static std::optional<PyProcess> attach(pid_t pid);

  // The thread state of kernel thread `tid` (our tid, as BPF and /proc name
  // it, also for a process in a container), GIL held or not.
  std::optional<std::uint64_t> thread_state(std::uint32_t tid);
  // Innermost first; empty if the thread has no Python frames or is unknown.
  std::vector<PyFrame> stack(std::uint32_t tid);
  // How the BPF sampler walks the same frames (copy_py_frames in
  // bpf/loopstall.bpf.c, the py_threads entry): nullopt while tid has no
  // thread state.
  std::optional<ls_py_thread> bpf_thread(std::uint32_t tid);
  PyFrame resolve(std::uint64_t code, std::uint64_t instr);
  // Frames copied elsewhere (by BPF at sample time), named now; the first
  // one that is not a code object ends the stack.
  std::vector<PyFrame> resolve_frames(const std::vector<RawFrame>& raw);

  const PyOffsets& offsets() const { return offsets_; }
  std::uint64_t runtime_address() const { return info_.runtime; }
  const PyRuntimeInfo& runtime_info() const { return info_; }
  pid_t pid() const { return memory_.pid(); }
  // Whether the process is in a PID namespace below ours: its thread states
  // hold its own tids, which are then looked up for each of ours.
  bool in_child_pid_namespace() const { return child_pid_ns_; }
  // The interpreter is shutting down (Py_Finalize began) or is gone: what
  // the loop thread does now is teardown, not a stall of the service.
  bool finalizing() const;
  // "3.11"
  std::string version() const;
  // Whether offsets came from the target's _Py_DebugOffsets (3.13+).
  bool uses_debug_offsets() const { return debug_offsets_; }
  // Before 3.11: where struct pthread keeps the tid (kNoField until known).
  std::uint32_t pthread_tid_offset() const { return pthread_tid_offset_; }

 private:
  PyProcess(pid_t pid, const PyRuntimeInfo& info, const PyOffsets& offsets, bool debug_offsets);
  bool ensure_pthread_tid_offset();
  // Our tid as the process knows it; nullopt when the thread is gone.
  std::optional<std::uint32_t> own_tid(std::uint32_t tid) const;

  ProcessMemory memory_;
  PyRuntimeInfo info_;
  PyOffsets offsets_;
  bool debug_offsets_ = false;
  bool child_pid_ns_ = false;
  std::uint32_t pthread_tid_offset_ = kNoField;
  CodeResolver resolver_;
};

}  // namespace loopstall::python
