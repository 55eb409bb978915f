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

}  // namespace

std::optional<ProcInfo> inspect_process(std::uint32_t pid, const std::string& proc_root) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  // maps and exe need ptrace read access to another user's process, but not
  // the same one: CAP_PERFMON alone opens maps (mm_access), only
  // CAP_SYS_PTRACE resolves exe. comm, cmdline and cgroup are world-readable.
  ProcTexts t;
  t.maps = read_maps(pid, proc_root);
  t.exe = read_link(dir + "/exe");
  t.comm = read_file_prefix(dir + "/comm", 64);
  // Bounded: matchers see the first kMaxCmdlineBytes (docs/security.md).
  t.cmdline = read_cmdline(pid, proc_root);
  t.cgroup = read_file_prefix(dir + "/cgroup", kMaxCgroupBytes);
  // loopstall maps interpreters and extension modules to read their symbols
  // and unwind tables: it must never watch itself (nor a capture CLI, nor a
  // second daemon; classify_process also goes by the file's name).
  t.runs_this_binary = (proc_root == "/proc" && pid == static_cast<std::uint32_t>(getpid())) ||
                       same_file(dir + "/exe", "/proc/self/exe");
  return classify_process(pid, t);
}

std::optional<ProcInfo> classify_process(std::uint32_t pid, const ProcTexts& t) {
  if (!t.comm && !t.maps) return std::nullopt;  // gone
  // A plain vector and a flag: GCC 12 -O2 warns (maybe-uninitialized, a
  // false positive) on an optional<vector> here.
  const bool have_maps = t.maps.has_value();
  const std::vector<native::Mapping> maps = have_maps ? native::parse_maps(*t.maps) : std::vector<native::Mapping>{};
  ProcInfo info;
  info.pid = pid;
  info.exe = t.exe;
  if (info.exe.empty() && have_maps) {
    // The program is the first file the kernel mapped: the lowest address.
    // Without it a statically linked python3.11 (no libpython in its maps)
    // would not look like Python at all.
    info.exe = first_mapped_file(maps);
    info.limited = true;
  }
  if (t.comm) {
    info.comm = *t.comm;
    while (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();
  }
  if (t.cmdline) info.cmdline = *t.cmdline;
  if (t.cgroup) {
    info.cgroup = *t.cgroup;
    info.unit = systemd_unit_from_cgroup(info.cgroup);
  }

  std::string_view exe_name = basename(strip_deleted(info.exe));
  info.loopstall = t.runs_this_binary || exe_name == "loopstall" || exe_name == "loopstalld";
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
