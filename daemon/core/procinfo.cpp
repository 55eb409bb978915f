#include "loopstall/procinfo.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include "loopstall/frameworks.hpp"
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
  path = strip_deleted(path);
  static const std::regex re(R"((?:^|/)(?:lib)?python(3\.[0-9]+)[a-z]*(?:\.so[.0-9]*)?$)");
  std::match_results<std::string_view::const_iterator> m;
  if (std::regex_search(path.begin(), path.end(), m, re)) return m[1].str();
  return std::nullopt;
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

std::optional<ProcInfo> inspect_process(std::uint32_t pid, const std::string& proc_root) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  auto maps = read_file(dir + "/maps");
  if (!maps) return std::nullopt;  // gone, or not ours to read
  ProcInfo info;
  info.pid = pid;
  info.exe = read_link(dir + "/exe");
  if (auto comm = read_file(dir + "/comm")) {
    info.comm = *comm;
    while (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();
  }
  if (auto cmd = read_file(dir + "/cmdline")) {
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
  return info;
}

LoopKind loop_kind(const ProcInfo& p) {
  return p.python ? python_loop_kind(p.native_loop, p.stack_loop) : LoopKind::Epoll;
}

}  // namespace loopstall
