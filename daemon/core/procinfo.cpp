#include "loopstall/procinfo.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "loopstall/clock.hpp"
#include "loopstall/frameworks.hpp"
#include "loopstall/limits.hpp"
#include "loopstall/native/proc_maps.hpp"

namespace loopstall {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first `max` bytes of a file (one read may return less than asked:
// /proc files are produced a page at a time).
std::optional<std::string> read_prefix(const std::string& path, std::size_t max) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out(max, '\0');
  std::size_t got = 0;
  while (got < max) {
    const ssize_t n = read(fd, out.data() + got, max - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(fd);
  out.resize(got);
  return out;
}

std::string read_link(const std::string& path) {
  std::array<char, 4096> buf{};
  const ssize_t n = readlink(path.c_str(), buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string();
}

std::string_view basename(std::string_view p) {
  const auto pos = p.rfind('/');
  return pos == std::string_view::npos ? p : p.substr(pos + 1);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      break;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  return out;
}

// The file of the lowest file-backed mapping of a maps text ("" if none).
std::string first_mapped_file(std::string_view maps) {
  while (!maps.empty()) {
    const auto nl = maps.find('\n');
    const std::string_view line = maps.substr(0, nl);
    if (const auto slash = line.find('/'); slash != std::string_view::npos) return std::string(line.substr(slash));
    if (nl == std::string_view::npos) break;
    maps.remove_prefix(nl + 1);
  }
  return "";
}

bool is_hex_id(std::string_view s) {
  if (s.size() < 12) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// "docker-<id>.scope", "cri-containerd-<id>.scope", "libpod-<id>.scope",
// "crio-<id>.scope", or a bare "<id>" (cgroupfs driver): first 12 of the id.
std::optional<std::string> container_id(std::string_view comp) {
  constexpr std::string_view scope = ".scope";
  if (comp.size() > scope.size() && comp.substr(comp.size() - scope.size()) == scope) {
    comp.remove_suffix(scope.size());
    const auto dash = comp.rfind('-');
    if (dash == std::string_view::npos) return std::nullopt;
    comp = comp.substr(dash + 1);
  }
  if (is_hex_id(comp)) return std::string(comp.substr(0, 12));
  return std::nullopt;
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

std::string_view strip_deleted(std::string_view path) {
  // The kernel marks files replaced on disk (e.g. by an upgrade) this way.
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() && path.substr(path.size() - kDeleted.size()) == kDeleted)
    path.remove_suffix(kDeleted.size());
  return path;
}

std::optional<std::string> python_version_from_path(std::string_view path) {
  // [lib]python3.<digits>[a-z]*[.so[.0-9]*] as the last path component. By
  // hand, not std::regex: libstdc++'s matcher recurses per character, and
  // exe and maps paths are whatever the process's owner named them.
  std::string_view name = basename(strip_deleted(path));
  if (name.rfind("lib", 0) == 0) name.remove_prefix(3);
  constexpr std::string_view kPrefix = "python3.";
  if (name.rfind(kPrefix, 0) != 0) return std::nullopt;
  std::size_t i = kPrefix.size();
  const auto digit = [&](std::size_t k) { return k < name.size() && name[k] >= '0' && name[k] <= '9'; };
  if (!digit(i)) return std::nullopt;
  while (digit(i)) ++i;
  const std::string version(name.substr(0, i).substr(std::string_view("python").size()));
  while (i < name.size() && name[i] >= 'a' && name[i] <= 'z') ++i;
  if (i == name.size()) return version;
  if (name.substr(i, 3) != ".so") return std::nullopt;
  for (i += 3; i < name.size(); ++i)
    if (name[i] != '.' && !(name[i] >= '0' && name[i] <= '9')) return std::nullopt;
  return version;
}

std::string service_from_cgroup(std::string_view text) {
  std::string_view best_path;
  for (auto line : split(text, '\n')) {
    if (line.empty()) continue;
    auto fields = split(line, ':');
    if (fields.size() < 3) continue;
    // cgroup v2 ("0::/path") wins; else the v1 name=systemd or any path.
    std::string_view path = line.substr(fields[0].size() + fields[1].size() + 2);
    if (fields[0] == "0" && fields[1].empty()) {
      best_path = path;
      break;
    }
    if (best_path.empty() || fields[1] == "name=systemd") best_path = path;
  }
  auto comps = split(best_path, '/');
  for (auto it = comps.rbegin(); it != comps.rend(); ++it) {
    std::string_view c = *it;
    if (c.empty()) continue;
    if (auto id = container_id(c)) return *id;
    constexpr std::string_view svc = ".service";
    if (c.size() > svc.size() && c.substr(c.size() - svc.size()) == svc) {
      // A user's service manager is not the app's service: apps in its
      // scopes have none of their own.
      if (c.rfind("user@", 0) == 0) return "";
      return std::string(c);
    }
  }
  return "";
}

bool process_exists(std::uint32_t pid, const std::string& proc_root) {
  return access((proc_root + "/" + std::to_string(pid)).c_str(), F_OK) == 0;
}

std::string thread_comm(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  auto comm = read_file(proc_root + "/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  if (!comm) return "";
  while (!comm->empty() && comm->back() == '\n') comm->pop_back();
  return *comm;
}

std::vector<std::uint32_t> task_ids(std::uint32_t pid, const std::string& proc_root) {
  std::vector<std::uint32_t> out;
  DIR* d = opendir((proc_root + "/" + std::to_string(pid) + "/task").c_str());
  if (!d) return out;
  while (dirent* de = readdir(d)) {
    char* end = nullptr;
    const unsigned long tid = std::strtoul(de->d_name, &end, 10);
    if (end && end != de->d_name && *end == '\0' && tid > 0 && tid <= UINT32_MAX)
      out.push_back(static_cast<std::uint32_t>(tid));
  }
  closedir(d);
  return out;
}

char parse_stat_state(std::string_view stat) {
  // "pid (comm) S ...": comm may hold ')' and spaces; the state follows the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || close + 2 >= stat.size()) return '?';
  return stat[close + 2];
}

int parse_stat_cpu(std::string_view stat) {
  // Field 39 ("processor"), counted from the state (field 3) after the comm.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return -1;
  std::string_view rest = stat.substr(close + 1);
  int field = 2;
  std::size_t pos = 0;
  while (field < 39) {
    pos = rest.find_first_not_of(' ', pos);
    if (pos == std::string_view::npos) return -1;
    const auto end = rest.find(' ', pos);
    if (++field == 39) {
      int cpu = -1;
      const auto r =
          std::from_chars(rest.data() + pos, rest.data() + (end == std::string_view::npos ? rest.size() : end), cpu);
      return r.ec == std::errc() ? cpu : -1;
    }
    if (end == std::string_view::npos) return -1;
    pos = end;
  }
  return -1;
}

int parse_syscall_nr(std::string_view text) {
  // "232 0x3 ...": in a syscall; "-1 sp pc": blocked outside one; "running".
  int nr = -1;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), nr);
  return r.ec == std::errc() && nr >= 0 ? nr : -1;
}

std::optional<double> parse_exec_start_ms(std::string_view text) {
  for (auto line : split(text, '\n')) {
    if (line.rfind("se.exec_start", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string num(line.substr(colon + 1));
    char* end = nullptr;
    const double v = std::strtod(num.c_str(), &end);
    if (end == num.c_str() || !std::isfinite(v) || v < 0) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

namespace {

// CLOCK_MONOTONIC minus the task clock of `cpu`'s runqueue (exec_start's
// clock: it leaves out IRQ and steal time, so each CPU's runs apart from
// the others). Measured on our own thread moved to that CPU for a moment:
// the switch-in sets its exec_start to that clock's now.
std::optional<std::int64_t> sched_clock_offset_ns(int cpu, const std::string& proc_root) {
  cpu_set_t old, one;
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof old, &old) != 0) return std::nullopt;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return std::nullopt;
  sched_yield();
  const std::uint64_t mono = monotonic_ns();
  auto self = read_file(proc_root + "/thread-self/sched");
  sched_setaffinity(0, sizeof old, &old);
  if (!self) return std::nullopt;
  const auto ms = parse_exec_start_ms(*self);
  if (!ms) return std::nullopt;
  return static_cast<std::int64_t>(mono) - static_cast<std::int64_t>(*ms * 1e6);
}

}  // namespace

std::optional<ThreadActivity> thread_activity(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  const std::string dir = proc_root + "/" + std::to_string(pid) + "/task/" + std::to_string(tid);
  auto stat = read_file(dir + "/stat");
  if (!stat) return std::nullopt;
  ThreadActivity a;
  a.state = parse_stat_state(*stat);
  if (auto sc = read_file(dir + "/syscall")) a.syscall = parse_syscall_nr(*sc);
  // Only a sleeping thread's exec_start says when it last ran.
  if (auto sched = read_file(dir + "/sched"); sched && (a.state == 'S' || a.state == 'D')) {
    const auto ms = parse_exec_start_ms(*sched);
    const auto off = sched_clock_offset_ns(parse_stat_cpu(*stat), proc_root);
    if (ms && off) {
      const std::int64_t t = static_cast<std::int64_t>(*ms * 1e6) + *off;
      if (t > 0 && static_cast<std::uint64_t>(t) <= monotonic_ns()) a.last_ran_ns = static_cast<std::uint64_t>(t);
    }
  }
  return a;
}

std::optional<ProcInfo> inspect_process(std::uint32_t pid, const std::string& proc_root) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  // maps and exe need ptrace read access to another user's process, but not
  // the same one: CAP_PERFMON alone opens maps (mm_access), only
  // CAP_SYS_PTRACE resolves exe. comm, cmdline and cgroup are world-readable.
  const auto maps = read_file(dir + "/maps");
  ProcInfo info;
  info.pid = pid;
  info.exe = read_link(dir + "/exe");
  if (info.exe.empty() && maps) {
    // The program is the first file the kernel mapped: the lowest address.
    // Without it a statically linked python3.11 (no libpython in its maps)
    // would not look like Python at all.
    info.exe = first_mapped_file(*maps);
    info.limited = true;
  }
  if (auto comm = read_file(dir + "/comm")) {
    info.comm = *comm;
    while (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();
  } else if (!maps) {
    return std::nullopt;  // gone
  }
  // Bounded: matchers see the first kMaxCmdlineBytes (docs/security.md).
  if (auto cmd = read_prefix(dir + "/cmdline", kMaxCmdlineBytes)) {
    info.cmdline = std::move(*cmd);
    while (!info.cmdline.empty() && info.cmdline.back() == '\0') info.cmdline.pop_back();
    std::replace(info.cmdline.begin(), info.cmdline.end(), '\0', ' ');
  }
  if (auto cg = read_file(dir + "/cgroup")) info.service = service_from_cgroup(*cg);

  info.loopstall = is_loopstall(pid, dir, info.exe, proc_root);
  std::string_view exe_name = basename(strip_deleted(info.exe));
  if (exe_name.rfind("python", 0) == 0) {
    info.python = true;
    info.python_version = python_version_from_path(info.exe);
  }
  if (!maps) {
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
  for (const native::Mapping& m : native::parse_maps(*maps)) {
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

std::vector<std::uint32_t> parse_nspid(std::string_view text) {
  constexpr std::string_view kKey = "NSpid:";
  for (auto line : split(text, '\n')) {
    if (line.substr(0, kKey.size()) != kKey) continue;
    line.remove_prefix(kKey.size());
    std::vector<std::uint32_t> ids;
    while (true) {
      const auto start = line.find_first_not_of(" \t");
      if (start == std::string_view::npos) break;
      line.remove_prefix(start);
      std::uint32_t id = 0;
      const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), id);
      // Ids are positive and separated by blanks; anything else is not a line the kernel wrote.
      if (ec != std::errc() || id == 0 || (end != line.data() + line.size() && *end != ' ' && *end != '\t')) return {};
      ids.push_back(id);
      line.remove_prefix(static_cast<std::size_t>(end - line.data()));
    }
    return ids;
  }
  return {};
}

namespace {

// The NSpid ids of one thread; {tid} when the kernel has no NSpid line; empty when gone.
std::vector<std::uint32_t> namespace_ids(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  const auto status = read_file(proc_root + "/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  if (!status || status->empty()) return {};
  auto ids = parse_nspid(*status);
  // No NSpid line (kernel before 4.1), or one whose first id is not the one /proc names the thread by: one
  // namespace as far as we can tell.
  if (ids.empty() || ids.front() != tid) return {tid};
  return ids;
}

}  // namespace

std::optional<std::uint32_t> innermost_tid(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  const auto ids = namespace_ids(pid, tid, proc_root);
  if (ids.empty()) return std::nullopt;
  return ids.back();
}

bool in_child_pid_namespace(std::uint32_t pid, const std::string& proc_root) {
  return namespace_ids(pid, pid, proc_root).size() > 1;
}

std::map<std::uint32_t, std::uint32_t> innermost_tids(std::uint32_t pid, const std::string& proc_root) {
  std::map<std::uint32_t, std::uint32_t> out;
  std::error_code ec;
  // increment(ec): a process that exits mid-walk ends the walk instead of throwing.
  for (std::filesystem::directory_iterator it(proc_root + "/" + std::to_string(pid) + "/task", ec), last;
       !ec && it != last; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::uint32_t tid = 0;
    const auto [end, perr] = std::from_chars(name.data(), name.data() + name.size(), tid);
    if (perr != std::errc() || end != name.data() + name.size() || tid == 0) continue;
    if (const auto inner = innermost_tid(pid, tid, proc_root)) out.emplace(tid, *inner);
  }
  return out;
}

std::vector<std::string> target_file_paths(std::uint32_t pid, std::string_view path, std::uint64_t map_start,
                                           std::uint64_t map_end, const std::string& proc_root) {
  std::vector<std::string> out;
  const std::string dir = proc_root + "/" + std::to_string(pid);
  if (map_end > map_start) {
    char range[40];
    std::snprintf(range, sizeof range, "%llx-%llx", static_cast<unsigned long long>(map_start),
                  static_cast<unsigned long long>(map_end));
    out.push_back(dir + "/map_files/" + range);
  }
  path = strip_deleted(path);
  // Only absolute paths name a file ("[vdso]", "" and relative garbage do not).
  if (!path.empty() && path.front() == '/') out.push_back(dir + "/root" + std::string(path));
  return out;
}

}  // namespace loopstall
