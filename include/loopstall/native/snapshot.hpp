// A thread's user registers and the top of its user stack, frozen at one
// moment (by BPF when a loop thread blocks or is sampled, or by the helpers
// below). Unwinding happens later, from this copy.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "loopstall/process_memory.hpp"
#include "loopstall/procfs.hpp"

namespace loopstall::native {

// x86-64 user registers an unwinder may need: the callee-saved ones (CFI
// rules restore only those) plus ip and sp.
struct UserRegs {
  enum : std::uint32_t {
    kIp = 1u << 0,
    kSp = 1u << 1,
    kBp = 1u << 2,
    kBx = 1u << 3,
    kR12 = 1u << 4,
    kR13 = 1u << 5,
    kR14 = 1u << 6,
    kR15 = 1u << 7,
    kAll = 0xff,
  };
  std::uint64_t ip = 0, sp = 0, bp = 0, bx = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  // Which fields hold real values. A thread seen only from /proc knows just
  // ip and sp; the unwinder then recovers what it needs from the stack.
  std::uint32_t known = kAll;
};

struct StackSnapshot {
  UserRegs regs;
  std::uint64_t stack_base = 0;     // address of stack[0]; sp at capture
  std::vector<std::uint8_t> stack;  // bytes from stack_base upward
};

// Up to max_bytes of the stack from sp upward, stopping early at the end of
// the mapping (the first unreadable page).
std::vector<std::uint8_t> read_stack(const Memory& mem, std::uint64_t sp, std::size_t max_bytes);

// /proc/PID/task/TID/syscall of a thread that is off CPU (procfs.hpp reads it).
using BlockedState = ThreadSyscall;
// nullopt while the thread runs, or when it is gone or not readable.
inline std::optional<BlockedState> read_blocked_state(pid_t pid, pid_t tid) {
  return read_thread_syscall(static_cast<std::uint32_t>(pid), static_cast<std::uint32_t>(tid));
}

// Snapshot of a thread that is blocked (typically in a syscall), without
// ptrace: ip and sp from /proc, the stack with process_vm_readv. Retries when
// the thread moved while its stack was copied; nullopt if it keeps running,
// is gone, or is a kernel thread.
std::optional<StackSnapshot> snapshot_blocked_thread(pid_t pid, pid_t tid, std::size_t stack_bytes = 16 * 1024);

}  // namespace loopstall::native
