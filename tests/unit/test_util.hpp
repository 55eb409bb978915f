// Helpers shared by the unit tests: BPF-side structs built by hand, a
// capturing sink and a temporary directory.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "loopstall/loopstall.h"
#include "loopstall/sink.hpp"

namespace loopstall::test {

constexpr std::uint64_t kMs = 1'000'000ULL;
constexpr std::uint64_t kSec = 1'000'000'000ULL;

// A loop thread's state as BPF leaves it: zeroed, then the fields a test sets.
inline ls_loop make_loop(std::uint32_t tid, std::uint32_t tgid, std::uint64_t iter_start_ns) {
  ls_loop l;
  std::memset(&l, 0, sizeof l);
  l.tid = tid;
  l.tgid = tgid;
  l.iter_start_ns = iter_start_ns;
  l.last_ts_ns = iter_start_ns;
  l.run_state = LS_RUNNING;
  l.cur_syscall = LS_SYSCALL_NONE;
  l.syscalls[LS_MAX_SYSCALLS].nr = LS_SYSCALL_OTHER;
  return l;
}

inline void add_slot(ls_loop& l, int nr, std::uint32_t count, std::uint64_t ns) {
  l.syscalls[l.nsyscalls].nr = nr;
  l.syscalls[l.nsyscalls].count = count;
  l.syscalls[l.nsyscalls].ns = ns;
  l.nsyscalls++;
}

inline ls_stall_event make_stall_event(const ls_loop& l, std::uint64_t end_ns, const char* comm) {
  ls_stall_event e;
  std::memset(&e, 0, sizeof e);
  e.hdr.type = LS_EV_STALL;
  e.hdr.tid = l.tid;
  e.hdr.tgid = l.tgid;
  e.end_ns = end_ns;
  // Like the kernel: no terminating NUL when the name fills all 16 bytes.
  if (comm) std::memcpy(e.comm, comm, strnlen(comm, sizeof e.comm));
  e.loop = l;
  return e;
}

class CapturingSink : public Sink {
 public:
  struct Iterations {
    std::uint32_t pid;
    std::string service;
    std::uint64_t delta;
  };
  void stall(const StallReport& r) override { reports.push_back(r); }
  void iterations(std::uint32_t pid, const std::string& service, const IterationDelta& d) override {
    iteration_calls.push_back({pid, service, d.count});
  }
  void tick(std::uint64_t now_ns) override { ticks.push_back(now_ns); }
  void finish(const Summary& s) override { summaries.push_back(s); }
  std::vector<StallReport> reports;
  std::vector<std::uint64_t> ticks;
  std::vector<Iterations> iteration_calls;
  std::vector<Summary> summaries;
};

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loopstall-unit-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

  void write(const std::filesystem::path& rel, const std::string& content) const {
    const auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << content;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace loopstall::test
