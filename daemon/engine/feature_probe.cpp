// Can this host run loopstall's BPF programs? Say precisely what is missing.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "loopstall/engine.hpp"

namespace loopstall {
namespace {

bool exists(const char* path) {
  struct stat st {};
  return stat(path, &st) == 0;
}

// stat(2)'s errno for path, 0 when it exists.
int stat_errno(const char* path) {
  struct stat st {};
  return stat(path, &st) == 0 ? 0 : errno;
}

// Effective capability mask of this process (from /proc/self/status).
unsigned long long effective_caps() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

constexpr int kCapDacReadSearch = 2, kCapSysPtrace = 19, kCapSysAdmin = 21, kCapPerfmon = 38, kCapBpf = 39;

bool has_cap(unsigned long long caps, int cap) {
  return caps & (1ULL << cap);
}

}  // namespace

void probe_features() {
  const auto caps = effective_caps();
  const bool bpf_ok = has_cap(caps, kCapBpf) || has_cap(caps, kCapSysAdmin);
  const bool perf_ok = has_cap(caps, kCapPerfmon) || has_cap(caps, kCapSysAdmin);
  if (!bpf_ok || !perf_ok)
    throw EngineError(geteuid() == 0
                          ? "missing capabilities: loopstall needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)"
                          : "permission denied: loopstall must run as root (or with CAP_BPF and CAP_PERFMON)");
  if (!exists("/sys/kernel/btf/vmlinux"))
    throw EngineError(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): loopstall needs CONFIG_DEBUG_INFO_BTF=y");
  // Syscall tracepoints are attached through tracefs (mode 0700 root: a
  // non-root daemon needs CAP_DAC_READ_SEARCH to look into it).
  const int tracing = stat_errno("/sys/kernel/tracing/events");
  if (tracing == EACCES && !has_cap(caps, kCapDacReadSearch))
    throw EngineError(
        "cannot read tracefs (/sys/kernel/tracing: permission denied): loopstall needs root or "
        "CAP_DAC_READ_SEARCH to attach the syscall tracepoints");
  if (tracing != 0 && !exists("/sys/kernel/debug/tracing/events")) {
    if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
      throw EngineError(std::string("tracefs is not mounted and mounting it on /sys/kernel/tracing failed: ") +
                        std::strerror(errno));
  }
  if (!exists("/sys/kernel/tracing/events/syscalls") && !exists("/sys/kernel/debug/tracing/events/syscalls"))
    throw EngineError("this kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)");
  // Not fatal: stalls are still measured in every process.
  if (!has_cap(caps, kCapSysPtrace))
    std::fprintf(stderr,
                 "loopstall: warning: no CAP_SYS_PTRACE: stalls of other users' processes are measured but "
                 "come without Python and native stacks and without GC time (their exe is read from their "
                 "maps)\n");
}

}  // namespace loopstall
