// x86-64 syscall numbers to names (table generated from the kernel uapi).
#pragma once

#include <string>

namespace loopstall {

// "futex" for 202; "unknown" for LS_SYSCALL_NONE, "other" for
// LS_SYSCALL_OTHER, "syscall_<nr>" for a number the table does not know.
std::string syscall_name(int nr);

// epoll_wait, epoll_pwait or epoll_pwait2: where an event loop waits between
// iterations.
bool is_epoll_wait(long nr);

}  // namespace loopstall
