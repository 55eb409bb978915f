// What the live CPython tests share: whether they may run, the interpreters
// to run them under (pyenv 3.8 .. 3.13, Debian's python3.11) and a child
// process running a script under one of them.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace loopstall::python::test {

// Root is needed (map_files, other users' processes); without it the tests
// are skipped with a message, except under CI=true, where they fail.
inline bool may_run_live() {
  if (geteuid() == 0) return true;
  const char* ci = std::getenv("CI");
  if (ci && std::string(ci) == "true") {
    FAIL("live CPython tests need root (CI=true: not skipping)");
  }
  MESSAGE("skipping live CPython tests: not root");
  return false;
}

// Line numbers of the `# @name` markers in a script (tests look lines up by
// name, so edits to the script do not break them).
inline std::map<std::string, int> markers(const std::string& script) {
  std::map<std::string, int> out;
  std::ifstream in(script);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const auto at = line.find("# @");
    if (at == std::string::npos) continue;
    std::string name = line.substr(at + 3);
    name = name.substr(0, name.find_first_of(": "));
    out[name] = n;
  }
  return out;
}

struct Interpreter {
  std::string path;
  int minor;
};

inline std::vector<Interpreter> interpreters() {
  std::vector<Interpreter> out;
  const char* root = std::getenv("PYENV_ROOT");
  const char* home = std::getenv("HOME");
  const std::filesystem::path versions =
      std::filesystem::path(root ? root : std::string(home ? home : "/root") + "/.pyenv") / "versions";
  for (int minor = 8; minor <= 13; ++minor) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(versions, ec)) {
      const std::string name = e.path().filename().string();
      const std::string prefix = "3." + std::to_string(minor) + ".";
      const auto exe = e.path() / "bin" / ("python3." + std::to_string(minor));
      if (name.rfind(prefix, 0) == 0 && std::filesystem::exists(exe)) {
        out.push_back({exe.string(), minor});
        break;
      }
    }
  }
  if (std::filesystem::exists("/usr/bin/python3.11")) out.push_back({"/usr/bin/python3.11", 11});
  return out;
}

// The target process: its stdout is a pipe, it dies with us, and is killed and reaped when done.
// prefix: a command that runs the interpreter (unshare ...), looked up in PATH.
class Child {
 public:
  Child(const std::string& script, const std::string& python, const std::vector<std::string>& args,
        const std::vector<std::string>& prefix = {}) {
    int fds[2], in[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    REQUIRE(pipe2(in, O_CLOEXEC) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(fds[1], 1);
      dup2(in[0], 0);
      std::vector<char*> argv;
      for (const auto& a : prefix) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(const_cast<char*>(python.c_str()));
      argv.push_back(const_cast<char*>(script.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    close(in[0]);
    fd_ = fds[0];
    in_ = in[1];
  }
  ~Child() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(fd_);
    close(in_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // A line to the child's stdin.
  bool send(const std::string& line) {
    const std::string l = line + "\n";
    return write(in_, l.data(), l.size()) == static_cast<ssize_t>(l.size());
  }
  // The next stdout line ("" at the deadline or EOF).
  std::string read_line(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (const auto nl = out_.find('\n'); nl != std::string::npos) {
        std::string line = out_.substr(0, nl);
        out_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[256];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      out_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  pid_t pid() const { return pid_; }

  // "<role> <tid>" lines until all `roles` reported, or the deadline.
  std::map<std::string, std::uint32_t> wait_for(const std::vector<std::string>& roles, std::chrono::seconds limit) {
    std::map<std::string, std::uint32_t> got;
    std::string buf;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (got.size() < roles.size() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char chunk[256];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) break;
      buf.append(chunk, static_cast<std::size_t>(n));
      for (auto nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n')) {
        std::istringstream line(buf.substr(0, nl));
        buf.erase(0, nl + 1);
        std::string role;
        std::uint32_t tid = 0;
        if (line >> role >> tid) got[role] = tid;
      }
    }
    return got;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int in_ = -1;
  std::string out_;  // read_line's unread bytes
};

}  // namespace loopstall::python::test
