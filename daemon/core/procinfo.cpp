#include "loopstall/procinfo.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

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

  std::string_view exe_name = basename(strip_deleted(info.exe));
  if (exe_name.rfind("python", 0) == 0) {
    info.python = true;
    info.python_version = python_version_from_path(info.exe);
  }
  for (auto line : split(*maps, '\n')) {
    const auto slash = line.find('/');
    if (slash == std::string_view::npos) continue;
    std::string_view path = line.substr(slash);
    std::string_view name = basename(strip_deleted(path));
    if (name.rfind("libpython3", 0) == 0) {
      info.python = true;
      if (info.libpython.empty()) info.libpython = std::string(strip_deleted(path));
      if (!info.python_version) info.python_version = python_version_from_path(path);
    }
    // gevent's C modules live in its package directory; Debian links the
    // system libev.
    if (path.find("/gevent/") != std::string_view::npos || name.rfind("libev.so", 0) == 0) info.gevent = true;
  }
  if (!info.python) info.gevent = false;
  return info;
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
