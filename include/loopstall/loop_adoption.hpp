// Loops already running when loopstall attaches (capture or daemon start, a
// process decided late): which threads of a watched process are loops, and
// the state their iteration is in, so that a loop hung right now is
// reported like any other stall (with its start marked as estimated).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "loopstall/loopstall.h"
#include "loopstall/procinfo.hpp"
#include "loopstall/stall.hpp"

namespace loopstall {

bool is_epoll_wait_syscall(int nr);

// The loop slot to set up for thread tid as /proc shows it at now_ns:
// asleep in epoll_wait -> idle (its next iteration is measured from its
// start); otherwise, when `in_loop` (the caller has evidence it is a loop
// thread), an iteration in progress since the best estimate the kernel
// allows (when it went to sleep; now if it is running). nullopt: not
// adoptable (stopped, zombie, or no evidence).
std::optional<ls_loop> adoption_state(std::uint32_t pid, std::uint32_t tid, const ThreadActivity& a, bool in_loop,
                                      std::uint64_t now_ns);

}  // namespace loopstall
