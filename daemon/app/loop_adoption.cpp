#include "loopstall/loop_adoption.hpp"

#include <array>
#include <string_view>

namespace loopstall {
namespace {

// x86-64 numbers of the epoll waits (the syscalls that end an iteration).
constexpr int kEpollWait = 232, kEpollPwait = 281, kEpollPwait2 = 441;

struct LoopRunner {
  std::string_view file_suffix;
  std::string_view function;  // co_name; qualnames end with ".<name>"
};

// Frames that exist only while a loop runs (whatever it calls sits above).
constexpr std::array kRunners{
    LoopRunner{"asyncio/base_events.py", "run_forever"},
    LoopRunner{"asyncio/base_events.py", "_run_once"},
    LoopRunner{"asyncio/runners.py", "run"},
    LoopRunner{"twisted/internet/base.py", "mainLoop"},
    LoopRunner{"tornado/ioloop.py", "start"},
    LoopRunner{"eventlet/hubs/hub.py", "run"},
    LoopRunner{"gevent/hub.py", "run"},
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool names(std::string_view function, std::string_view name) {
  return function == name || (ends_with(function, name) && function.size() > name.size() &&
                              function[function.size() - name.size() - 1] == '.');
}

}  // namespace

bool is_epoll_wait_syscall(int nr) {
  return nr == kEpollWait || nr == kEpollPwait || nr == kEpollPwait2;
}

bool frames_run_a_loop(const std::vector<PyFrame>& frames, bool gevent) {
  for (const PyFrame& f : frames)
    for (const LoopRunner& r : kRunners)
      if (ends_with(f.file, r.file_suffix) && names(f.function, r.function)) return true;
  return gevent && !frames.empty() && frames.back().function != "<module>";
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
