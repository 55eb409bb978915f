// This thread's registers and stack, as getcontext leaves them: a snapshot
// the native unwinder can unwind without root or a second process. Shared by
// the unwinder's self tests and its fuzz target (header-only: the fuzz build
// has no test libraries).
#pragma once

#include <ucontext.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "loopstall/native/snapshot.hpp"
#include "loopstall/process_memory.hpp"

namespace loopstall::native::test {

// ip is the return address of the call to getcontext, inside this function
// (the tests look for its name among the frames; not inlined, so it has a
// frame of its own). nullopt if getcontext fails or no stack could be read.
__attribute__((noinline)) inline std::optional<StackSnapshot> capture_myself(std::size_t stack_bytes) {
  ucontext_t uc;
  if (getcontext(&uc) != 0) return std::nullopt;
  const auto* g = uc.uc_mcontext.gregs;
  StackSnapshot s;
  s.regs = {static_cast<std::uint64_t>(g[REG_RIP]),
            static_cast<std::uint64_t>(g[REG_RSP]),
            static_cast<std::uint64_t>(g[REG_RBP]),
            static_cast<std::uint64_t>(g[REG_RBX]),
            static_cast<std::uint64_t>(g[REG_R12]),
            static_cast<std::uint64_t>(g[REG_R13]),
            static_cast<std::uint64_t>(g[REG_R14]),
            static_cast<std::uint64_t>(g[REG_R15]),
            UserRegs::kAll};
  s.stack_base = s.regs.sp;
  s.stack = read_stack(ProcessMemory(::getpid()), s.regs.sp, stack_bytes);
  if (s.stack.empty()) return std::nullopt;
  return s;
}

}  // namespace loopstall::native::test
