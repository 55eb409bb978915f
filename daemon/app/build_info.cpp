#include "loopstall/build_info.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "loopstall_build.h"

namespace loopstall {
namespace {

bool exists(const char* path) {
  return access(path, F_OK) == 0;
}

// libbpf's probes load a tiny program or map: they need CAP_BPF, and say
// nothing (EPERM) without it.
const char* probe(int rc) {
  if (rc == 1) return "yes";
  if (rc == 0) return "no";
  return "unknown (needs root)";
}

// tp_btf/sched_switch attaches through the kernel's BTF typedef of the
// tracepoint (libbpf cannot probe the program type without a target).
const char* tp_btf_sched_switch() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return "no (no kernel BTF)";
  const bool found = btf__find_by_name_kind(vmlinux, "btf_trace_sched_switch", BTF_KIND_TYPEDEF) > 0;
  btf__free(vmlinux);
  return found ? "yes" : "no";
}

std::string line(const char* name, const char* value) {
  return std::string("  ") + name + ": " + value + "\n";
}

}  // namespace

std::string version_text(const std::string& program) {
  std::string out =
      program + " " + LOOPSTALL_VERSION + " (git " + LOOPSTALL_GIT_REVISION + ", " + LOOPSTALL_BUILD_TYPE + ")\n";
  char lib[64];
  std::snprintf(lib, sizeof lib, "libbpf %u.%u (built against %s)\n", libbpf_major_version(), libbpf_minor_version(),
                LOOPSTALL_LIBBPF_BUILD_VERSION);
  out += lib;
  utsname u{};
  uname(&u);
  out += std::string("kernel ") + u.release + " " + u.machine + ":\n";
  out += line("BTF (/sys/kernel/btf/vmlinux)", exists("/sys/kernel/btf/vmlinux") ? "yes" : "no");
  out += line("BPF ring buffer", probe(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr)));
  out += line("tp_btf sched_switch", tp_btf_sched_switch());
  out += line("perf_event programs (cpu-clock sampler)",
              probe(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_PERF_EVENT, nullptr)));
  const bool syscalls =
      exists("/sys/kernel/tracing/events/syscalls") || exists("/sys/kernel/debug/tracing/events/syscalls");
  out += line("syscall tracepoints", syscalls ? "yes" : "not visible (tracefs unmounted or unreadable)");
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  out += line("uprobe_multi links for USDT GC probes (6.6+)", major > 6 || (major == 6 && minor >= 6) ? "yes" : "no");
  std::ifstream stats("/proc/sys/kernel/bpf_stats_enabled");
  int enabled = -1;
  stats >> enabled;
  out += line("BPF run-time stats (kernel.bpf_stats_enabled)", enabled == 1 ? "on" : enabled == 0 ? "off" : "unknown");
  out.pop_back();  // the caller ends the line
  return out;
}

}  // namespace loopstall
