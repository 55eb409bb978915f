#include "loopstall/loop_adoption.hpp"

namespace loopstall {
namespace {

// x86-64 numbers of the epoll waits (the syscalls that end an iteration).
constexpr int kEpollWait = 232, kEpollPwait = 281, kEpollPwait2 = 441;

}  // namespace

bool is_epoll_wait_syscall(int nr) {
  return nr == kEpollWait || nr == kEpollPwait || nr == kEpollPwait2;
}

std::optional<ls_loop> adoption_state(std::uint32_t pid, std::uint32_t tid, const ThreadActivity& a, bool in_loop,
                                      std::uint64_t now_ns) {
  ls_loop l{};
  l.tid = tid;
  l.tgid = pid;
  if (a.state != 'Z' && a.state != 'X' && is_epoll_wait_syscall(a.syscall)) {
    l.run_state = LS_IDLE;
    return l;
  }
  if (!in_loop) return std::nullopt;
  if (a.state == 'S' || a.state == 'D') {
    // Asleep since it last ran: the iteration began no later than that.
    l.iter_start_ns = a.last_ran_ns && *a.last_ran_ns <= now_ns ? *a.last_ran_ns : now_ns;
    l.run_state = LS_BLOCKED;
    l.cur_syscall = a.syscall >= 0 ? a.syscall : LS_SYSCALL_NONE;
  } else if (a.state == 'R') {
    // Running: when this iteration began is not kept anywhere; count from now.
    l.iter_start_ns = now_ns;
    l.run_state = LS_RUNNING;
  } else {
    return std::nullopt;
  }
  l.last_ts_ns = l.iter_start_ns;
  l.adopted_start_ns = l.iter_start_ns;
  return l;
}

}  // namespace loopstall
