// x86-64 syscall numbers to names (table generated from the kernel uapi).
#pragma once

#include <string>

namespace loopstall {

// "futex" for 202; "unknown" for LS_SYSCALL_NONE, "other" for
// LS_SYSCALL_OTHER, "syscall_<nr>" for a number the table does not know.
std::string syscall_name(int nr);

}  // namespace loopstall
