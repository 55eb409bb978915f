// StackSource over live processes: PyProcess (one per CPython process,
// attached lazily) and NativeUnwinder (libdw, cached per process).
#include <algorithm>
#include <string>
#include <unordered_map>

#include "loopstall/clock.hpp"
#include "loopstall/native/snapshot.hpp"
#include "loopstall/native/unwinder.hpp"
#include "loopstall/python/stack_reader.hpp"
#include "loopstall/stack_source.hpp"

namespace loopstall {
namespace {

constexpr std::size_t kMaxNativeFrames = 64;
// A process that is not (yet) an initialized CPython is asked again after
// this long: an interpreter found mid-start-up becomes readable later.
constexpr std::uint64_t kRetryAttachNs = 1'000'000'000ULL;

class LiveStacks final : public StackSource {
 public:
  std::optional<StackSample> on_cpu(const ls_sample_event& e) override {
    native::StackSnapshot snap;
    snap.regs = {e.regs.ip,  e.regs.sp,  e.regs.bp,
                 e.regs.bx,  e.regs.r12, e.regs.r13,
                 e.regs.r14, e.regs.r15, native::UserRegs::kAll};
    snap.stack_base = e.regs.sp;
    const std::size_t len = std::min<std::size_t>(e.stack_len, sizeof e.stack);
    snap.stack.assign(e.stack, e.stack + len);
    StackSample s;
    s.native = unwind(e.hdr.tgid, snap);
    if (python::PyProcess* py = python_of(e.hdr.tgid)) {
      if (e.py_status == LS_PY_OK) {
        std::vector<python::RawFrame> raw;
        const std::uint32_t n = std::min<std::uint32_t>(e.py_nframes, LS_PY_MAX_FRAMES);
        for (std::uint32_t i = 0; i < n; ++i) raw.push_back({e.py_frames[i].code, e.py_frames[i].instr});
        s.python = py->resolve_frames(raw);
      } else {
        s.python = py->stack(e.hdr.tid);  // not registered yet: the frames now
      }
    }
    if (s.empty()) return std::nullopt;
    return s;
  }

  std::optional<ls_py_thread> python_thread(std::uint32_t pid, std::uint32_t tid) override {
    python::PyProcess* py = python_of(pid);
    if (!py) return std::nullopt;
    return py->bpf_thread(tid);
  }

  std::optional<StackSample> blocked(std::uint32_t pid, std::uint32_t tid) override {
    auto snap = native::snapshot_blocked_thread(static_cast<pid_t>(pid), static_cast<pid_t>(tid));
    if (!snap) return std::nullopt;
    return read(pid, tid, *snap);
  }

  std::optional<SleepingFrames> sleeping_python_frames(std::uint32_t pid, std::uint32_t tid) override {
    const auto before = native::read_blocked_state(static_cast<pid_t>(pid), static_cast<pid_t>(tid));
    if (!before || before->nr < 0) return std::nullopt;
    python::PyProcess* py = python_of(pid);
    if (!py) return std::nullopt;
    SleepingFrames out{before->nr, py->stack(tid)};
    const auto after = native::read_blocked_state(static_cast<pid_t>(pid), static_cast<pid_t>(tid));
    if (!after || after->nr != before->nr || after->sp != before->sp || after->pc != before->pc || out.frames.empty())
      return std::nullopt;
    return out;
  }

  std::vector<PyFrame> python_frames(std::uint32_t pid, std::uint32_t tid) override {
    python::PyProcess* py = python_of(pid);
    return py ? py->stack(tid) : std::vector<PyFrame>{};
  }

  bool interpreter_finalizing(std::uint32_t pid) override {
    python::PyProcess* py = python_of(pid);
    return py && py->finalizing();
  }

  void forget(std::uint32_t pid) override {
    py_.erase(pid);
    unwinder_.forget(static_cast<pid_t>(pid));
  }

 private:
  struct Py {
    std::optional<python::PyProcess> process;
    std::uint64_t tried_ns = 0;
  };

  // Offsets as the contract wants them: in the module file (the unwinder's
  // frame.offset is the ELF address, as addr2line takes it).
  std::vector<NativeFrame> unwind(std::uint32_t pid, const native::StackSnapshot& snap) {
    std::vector<NativeFrame> frames;
    for (auto& u : unwinder_.unwind_frames(static_cast<pid_t>(pid), snap, kMaxNativeFrames)) {
      u.frame.offset = u.file_offset;
      frames.push_back(std::move(u.frame));
    }
    return frames;
  }

  std::optional<StackSample> read(std::uint32_t pid, std::uint32_t tid, const native::StackSnapshot& snap) {
    StackSample s;
    s.native = unwind(pid, snap);
    if (python::PyProcess* py = python_of(pid)) s.python = py->stack(tid);
    if (s.empty()) return std::nullopt;
    return s;
  }

  python::PyProcess* python_of(std::uint32_t pid) {
    Py& p = py_[pid];
    if (!p.process) {
      const std::uint64_t now = monotonic_ns();
      if (p.tried_ns && now - p.tried_ns < kRetryAttachNs) return nullptr;
      p.tried_ns = now;
      p.process = python::PyProcess::attach(static_cast<pid_t>(pid));
    }
    return p.process ? &*p.process : nullptr;
  }

  std::unordered_map<std::uint32_t, Py> py_;
  native::NativeUnwinder unwinder_;
};

}  // namespace

std::unique_ptr<StackSource> make_live_stack_source() {
  return std::make_unique<LiveStacks>();
}

}  // namespace loopstall
