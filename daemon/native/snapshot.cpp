#include "loopstall/native/snapshot.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace loopstall::native {
namespace {

constexpr std::uint64_t kPage = 4096;

}  // namespace

std::vector<std::uint8_t> read_stack(const Memory& mem, std::uint64_t sp, std::size_t max_bytes) {
  std::vector<std::uint8_t> out(max_bytes);
  std::size_t got = 0;
  // Page by page: the stack mapping usually ends before sp + max_bytes.
  while (got < max_bytes) {
    const std::uint64_t addr = sp + got;
    const std::size_t chunk = std::min<std::size_t>(max_bytes - got, kPage - addr % kPage);
    if (!mem.read(addr, out.data() + got, chunk)) break;
    got += chunk;
  }
  out.resize(got);
  return out;
}

std::optional<BlockedState> read_blocked_state(pid_t pid, pid_t tid) {
  char path[80];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", static_cast<int>(pid), static_cast<int>(tid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // "nr a0 .. a5 sp pc" in a syscall, "-1 sp pc" when blocked elsewhere,
  // "running" otherwise.
  BlockedState s;
  unsigned long long v[8] = {};
  int consumed = 0;
  if (std::sscanf(buf, "%ld%n", &s.nr, &consumed) != 1) return std::nullopt;
  const char* rest = buf + consumed;
  if (s.nr == -1) {
    if (std::sscanf(rest, " %llx %llx", &v[0], &v[1]) != 2) return std::nullopt;
    s.sp = v[0];
    s.pc = v[1];
  } else {
    if (std::sscanf(rest, " %llx %llx %llx %llx %llx %llx %llx %llx", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                    &v[7]) != 8) {
      return std::nullopt;
    }
    for (int i = 0; i < 6; ++i) s.args[i] = v[i];
    s.sp = v[6];
    s.pc = v[7];
  }
  // Kernel threads have no user context.
  if (s.sp == 0 || s.pc == 0) return std::nullopt;
  return s;
}

std::optional<StackSnapshot> snapshot_blocked_thread(pid_t pid, pid_t tid, std::size_t stack_bytes) {
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
