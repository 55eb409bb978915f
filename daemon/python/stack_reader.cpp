#include "loopstall/python/stack_reader.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "loopstall/phase_times.hpp"
#include "loopstall/procfs.hpp"
#include "loopstall/python/debug_offsets.hpp"
#include "loopstall/python/thread_ids.hpp"

namespace loopstall::python {

PyProcess::PyProcess(pid_t pid, const PyRuntimeInfo& info, const PyOffsets& offsets, bool debug_offsets)
    : memory_(pid), info_(info), offsets_(offsets), debug_offsets_(debug_offsets), resolver_(offsets, info.types) {}

std::optional<PyProcess> PyProcess::attach(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  const ProcessMemory mem(pid);
  const auto info = locate_runtime(pid, mem);
  if (!info) return std::nullopt;
  const PyOffsets* table = offsets_for(info->major, info->minor);
  if (!table) return std::nullopt;
  PyOffsets offsets = *table;
  bool from_debug = false;
  if (const auto raw = read_raw_debug_offsets(mem, info->runtime, *table)) {
    // Free-threaded builds lay objects out differently: neither source of offsets fits them.
    if (raw->free_threaded != 0) return std::nullopt;
    if (auto d = apply_debug_offsets(*raw, *table)) {
      offsets = *d;
      from_debug = true;
    }
  }
  // An interpreter must exist: before Py_Initialize (or after finalization) there is nothing to read.
  const auto interp = mem.read_as<std::uint64_t>(info->runtime + offsets.runtime_interpreters_head);
  if (!interp || !plausible_pointer(*interp)) return std::nullopt;
  PyProcess p(pid, *info, offsets, from_debug);
  // A process never changes its PID namespace (unshare and setns move only its children).
  p.child_pid_ns_ = loopstall::in_child_pid_namespace(static_cast<std::uint32_t>(pid));
  p.ensure_pthread_tid_offset();
  return p;
}

bool PyProcess::ensure_pthread_tid_offset() {
  if (offsets_.tstate_native_thread_id != kNoField) return true;
  if (pthread_tid_offset_ != kNoField) return true;
  std::optional<std::uint32_t> off;
  if (info_.pthread_tid_descriptor) off = pthread_tid_offset_from_descriptor(memory_, info_.pthread_tid_descriptor);
  if (!off) {
    if (const auto self = own_tid(static_cast<std::uint32_t>(pid())))
      off = pthread_tid_offset_by_search(memory_, info_.runtime, offsets_, static_cast<pid_t>(*self), live_tids(pid()));
  }
  if (!off) return false;
  pthread_tid_offset_ = *off;
  return true;
}

std::optional<std::uint32_t> PyProcess::own_tid(std::uint32_t tid) const {
  if (!child_pid_ns_) return tid;
  return innermost_tid(static_cast<std::uint32_t>(pid()), tid);
}

std::optional<std::uint64_t> PyProcess::thread_state(std::uint32_t tid) {
  if (!ensure_pthread_tid_offset()) return std::nullopt;
  const auto own = own_tid(tid);
  if (!own) return std::nullopt;
  return find_thread_state(memory_, info_.runtime, offsets_, *own, pthread_tid_offset_);
}

std::optional<ls_py_thread> PyProcess::bpf_thread(std::uint32_t tid) {
  const auto tstate = thread_state(tid);
  const PyOffsets& o = offsets_;
  const bool via_cframe = o.tstate_cframe != kNoField;
  ls_py_thread t{};
  t.tstate_frame = via_cframe ? o.tstate_cframe : o.tstate_frame;
  if (!tstate || t.tstate_frame == kNoField) return std::nullopt;
  t.tstate = *tstate;
  t.tgid = static_cast<std::uint32_t>(pid());
  t.cframe_current_frame = via_cframe ? o.cframe_current_frame : LS_PY_NO_FIELD;
  t.frame_previous = o.frame_previous;
  t.frame_code = o.frame_code;
  t.frame_instr = o.frame_instr;
  t.instr_is_pointer = o.instr_kind == InstrKind::kPointer;
  t.frame_owner = o.frame_owner == kNoField || o.owner_cstack == kNoField ? LS_PY_NO_FIELD : o.frame_owner;
  t.owner_cstack = o.owner_cstack;
  return t;
}

std::vector<PyFrame> PyProcess::stack(std::uint32_t tid) {
  const auto tstate = thread_state(tid);
  if (!tstate) return {};
  // The resolver checks each code object's type as it reads it, so the walk
  // need not read it a second time.
  std::vector<RawFrame> raw;
  {
    const PhaseTimer timer(Phase::kPythonWalk);
    raw = walk_frames(memory_, offsets_, *tstate, kMaxFrames, 0);
  }
  return resolve_frames(raw);
}

std::vector<PyFrame> PyProcess::resolve_frames(const std::vector<RawFrame>& raw) {
  const PhaseTimer timer(Phase::kPythonNames);
  return resolver_.resolve_stack(memory_, raw);
}

PyFrame PyProcess::resolve(std::uint64_t code, std::uint64_t instr) {
  return resolver_.resolve(memory_, {code, instr});
}

bool PyProcess::finalizing() const {
  // Asked for every loop in a long iteration at every scan: one read when
  // the two fields are close (they are 16-24 bytes apart in every version).
  const std::uint32_t fin = offsets_.runtime_finalizing, head = offsets_.runtime_interpreters_head;
  if (fin != kNoField && head != kNoField) {
    const std::uint32_t lo = std::min(fin, head), hi = std::max(fin, head) + 8;
    std::array<std::uint8_t, 64> block{};
    if (hi - lo <= block.size()) {
      if (!memory_.read(info_.runtime + lo, block.data(), hi - lo)) return true;  // the process is going away
      std::uint64_t f = 0, interp = 0;
      std::memcpy(&f, block.data() + (fin - lo), sizeof f);
      std::memcpy(&interp, block.data() + (head - lo), sizeof interp);
      return f != 0 || interp == 0;
    }
  }
  if (offsets_.runtime_finalizing != kNoField) {
    const auto f = memory_.read_as<std::uint64_t>(info_.runtime + offsets_.runtime_finalizing);
    if (!f) return true;  // unreadable: the process is going away
    if (*f != 0) return true;
  }
  const auto interp = memory_.read_as<std::uint64_t>(info_.runtime + offsets_.runtime_interpreters_head);
  return !interp || *interp == 0;
}

std::string PyProcess::version() const {
  return std::to_string(info_.major) + "." + std::to_string(info_.minor);
}

}  // namespace loopstall::python
