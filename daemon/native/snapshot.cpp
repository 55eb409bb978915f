#include "loopstall/native/snapshot.hpp"

#include <algorithm>

#include "loopstall/phase_times.hpp"

namespace loopstall::native {

std::vector<std::uint8_t> read_stack(const Memory& mem, std::uint64_t sp, std::size_t max_bytes) {
  std::vector<std::uint8_t> out(max_bytes);
  // Page by page: the stack mapping usually ends before sp + max_bytes.
  out.resize(mem.read_pages(sp, out.data(), max_bytes));
  return out;
}

std::optional<StackSnapshot> snapshot_blocked_thread(pid_t pid, pid_t tid, std::size_t stack_bytes) {
  const PhaseTimer timer(Phase::kSnapshot);
  const ProcessMemory mem(pid);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto before = read_blocked_state(pid, tid);
    if (!before) return std::nullopt;
    StackSnapshot snap;
    snap.regs.ip = before->pc;
    snap.regs.sp = before->sp;
    snap.regs.known = UserRegs::kIp | UserRegs::kSp;
    snap.stack_base = before->sp;
    snap.stack = read_stack(mem, before->sp, stack_bytes);
    // The copy is consistent only if the thread did not run meanwhile.
    const auto after = read_blocked_state(pid, tid);
    if (!after) return std::nullopt;
    if (after->nr == before->nr && after->sp == before->sp && after->pc == before->pc &&
        std::equal(std::begin(after->args), std::end(after->args), std::begin(before->args))) {
      return snap;
    }
  }
  return std::nullopt;
}

}  // namespace loopstall::native
