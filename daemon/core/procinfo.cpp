// Classifying a process (procinfo.hpp) from what procfs.hpp reads.
#include "loopstall/procinfo.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "loopstall/frameworks.hpp"
#include "loopstall/limits.hpp"
#include "loopstall/native/proc_maps.hpp"
#include "loopstall/service_name.hpp"

namespace loopstall {
namespace {

std::string_view basename(std::string_view p) {
  const auto pos = p.rfind('/');
  return pos == std::string_view::npos ? p : p.substr(pos + 1);
}

// The file of the lowest file-backed mapping ("" if none).
std::string first_mapped_file(const std::vector<native::Mapping>& maps) {
  for (const native::Mapping& m : maps)
    if (!m.path.empty() && m.path.front() == '/') return m.path;
  return "";
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa = {};
  struct stat sb = {};
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// loopstall maps interpreters and extension modules to read their symbols
// and unwind tables: it must never watch itself (nor a capture CLI, nor a
// second daemon).
bool is_loopstall(std::uint32_t pid, const std::string& dir, std::string_view exe, const std::string& proc_root) {
  if (proc_root == "/proc" && pid == static_cast<std::uint32_t>(getpid())) return true;
  const std::string_view name = basename(strip_deleted(exe));
  if (name == "loopstall" || name == "loopstalld") return true;
  return same_file(dir + "/exe", "/proc/self/exe");
}

}  // namespace

std::optional<ProcInfo> inspect_process(std::uint32_t pid, const std::string& proc_root) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  // maps and exe need ptrace read access to another user's process, but not
  // the same one: CAP_PERFMON alone opens maps (mm_access), only
  // CAP_SYS_PTRACE resolves exe. comm, cmdline and cgroup are world-readable.
  // A plain vector and a flag: GCC 12 -O2 warns (maybe-uninitialized, a
  // false positive) on an optional<vector> here.
  const auto maps_text = read_maps(pid, proc_root);
  const bool have_maps = maps_text.has_value();
  const std::vector<native::Mapping> maps = have_maps ? native::parse_maps(*maps_text) : std::vector<native::Mapping>{};
  ProcInfo info;
  info.pid = pid;
  info.exe = read_link(dir + "/exe");
  if (info.exe.empty() && have_maps) {
    // The program is the first file the kernel mapped: the lowest address.
    // Without it a statically linked python3.11 (no libpython in its maps)
    // would not look like Python at all.
    info.exe = first_mapped_file(maps);
    info.limited = true;
  }
  if (auto comm = read_file_prefix(dir + "/comm", 64)) {
    info.comm = *comm;
    while (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();
  } else if (!have_maps) {
    return std::nullopt;  // gone
  }
  // Bounded: matchers see the first kMaxCmdlineBytes (docs/security.md).
  if (auto cmd = read_cmdline(pid, proc_root)) info.cmdline = std::move(*cmd);
  if (auto cg = read_file_prefix(dir + "/cgroup", kMaxCgroupBytes)) {
    info.cgroup = std::move(*cg);
    info.unit = systemd_unit_from_cgroup(info.cgroup);
  }

  info.loopstall = is_loopstall(pid, dir, info.exe, proc_root);
  std::string_view exe_name = basename(strip_deleted(info.exe));
  if (exe_name.rfind("python", 0) == 0) {
    info.python = true;
    info.python_version = python_version_from_path(info.exe);
  }
  if (!have_maps) {
    // Not ours to read: judge by the name and command line only.
    info.limited = true;
    const std::string_view cmd = info.cmdline;
    const std::string_view argv0 = basename(cmd.substr(0, cmd.find(' ')));
    for (std::string_view name : {std::string_view(info.comm), argv0}) {
      if (name.rfind("python", 0) != 0) continue;
      info.python = true;
      if (!info.python_version) info.python_version = python_version_from_path(name);
    }
    if (info.python)
      info.native_loop = cmd.find("gevent") != std::string_view::npos ? LoopKind::Gevent : LoopKind::Python;
    return info;
  }
  ModuleEvidence modules;
  for (const native::Mapping& m : maps) {
    if (!m.executable || m.path.empty() || m.path.front() != '/') continue;
    std::string_view path = strip_deleted(m.path);
    if (basename(path).rfind("libpython3", 0) == 0) {
      info.python = true;
      if (info.libpython.empty()) info.libpython = std::string(path);
      if (!info.python_version) info.python_version = python_version_from_path(path);
    }
    modules.add(path);
  }
  info.native_loop = info.python ? modules.kind() : LoopKind::Epoll;
  info.loop_module = info.python && modules.loop_module();
  return info;
}

LoopKind loop_kind(const ProcInfo& p) {
  return p.python ? python_loop_kind(p.native_loop, p.stack_loop) : LoopKind::Epoll;
}

}  // namespace loopstall
