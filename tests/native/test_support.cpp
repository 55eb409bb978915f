#include "test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

namespace loopstall::native::test {

Child::Child(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(fds[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  out_fd_ = fds[0];
}

Child::~Child() {
  kill_and_wait();
  if (out_fd_ >= 0) ::close(out_fd_);
}

void Child::kill_and_wait() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, __WALL);
  pid_ = -1;
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[256];
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

bool wait_in_syscall(pid_t pid, long nr, std::chrono::milliseconds timeout) {
  return wait_for(
      [&] {
        const auto s = read_blocked_state(pid, pid);
        return s && s->nr == nr;
      },
      timeout);
}

std::optional<StackSnapshot> ptrace_snapshot(pid_t pid, std::size_t stack_bytes) {
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) return std::nullopt;
  std::optional<StackSnapshot> out;
  int status = 0;
  if (::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) == 0 && ::waitpid(pid, &status, __WALL) == pid &&
      WIFSTOPPED(status)) {
    user_regs_struct r{};
    if (::ptrace(PTRACE_GETREGS, pid, nullptr, &r) == 0) {
      StackSnapshot s;
      s.regs = {r.rip, r.rsp, r.rbp, r.rbx, r.r12, r.r13, r.r14, r.r15, UserRegs::kAll};
      s.stack_base = r.rsp;
      s.stack = read_stack(ProcessMemory(pid), r.rsp, stack_bytes);
      out = std::move(s);
    }
  }
  ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
  return out;
}

std::string format_frames(const std::vector<UnwoundFrame>& frames) {
  std::ostringstream os;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto& f = frames[i];
    os << "#" << i << " 0x" << std::hex << f.pc << " " << (f.frame.symbol.empty() ? "??" : f.frame.symbol) << " ("
       << f.frame.module << "+0x" << f.frame.offset << ")" << std::dec << (f.activation ? " [act]" : "")
       << (f.recovered ? " [recovered]" : "") << "\n";
  }
  return os.str();
}

int find_frame(const std::vector<UnwoundFrame>& frames, const std::function<bool(const std::string&)>& pred,
               const std::string& module_part) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (pred(frames[i].frame.symbol) &&
        (module_part.empty() || frames[i].frame.module.find(module_part) != std::string::npos)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') return h;
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr) return pw->pw_dir;
  return "/root";
}

}  // namespace loopstall::native::test
