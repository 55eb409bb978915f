// /proc files, process listing, file paths of other processes (procfs.hpp).
// Thread activity and PID namespaces: proc_threads.cpp.
#include "loopstall/procfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>

#include "loopstall/limits.hpp"

namespace loopstall {
namespace {

std::string_view basename(std::string_view p) {
  const auto pos = p.rfind('/');
  return pos == std::string_view::npos ? p : p.substr(pos + 1);
}

// Numeric entries of a directory (/proc, /proc/PID/task).
std::vector<std::uint32_t> numeric_entries(const std::string& dir) {
  std::vector<std::uint32_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* de = readdir(d)) {
    const std::string_view name(de->d_name);
    std::uint32_t id = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (ec == std::errc() && end == name.data() + name.size() && id > 0) out.push_back(id);
  }
  closedir(d);
  return out;
}

std::string pid_dir(std::uint32_t pid, const std::string& proc_root) {
  return proc_root + "/" + std::to_string(pid);
}

}  // namespace

std::optional<std::string> read_file_prefix(const std::string& path, std::size_t max) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // One read may return less than asked: /proc files are produced a page at a
  // time. The buffer grows with what is read, not to `max` at once.
  std::string out(std::min<std::size_t>(max, 4096), '\0');
  std::size_t got = 0;
  while (got < max) {
    if (got == out.size()) out.resize(std::min(max, 2 * out.size()));
    const ssize_t n = read(fd, out.data() + got, out.size() - got);
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

std::optional<std::string> read_maps(std::uint32_t pid, const std::string& proc_root) {
  auto text = read_file_prefix(pid_dir(pid, proc_root) + "/maps", kMaxMapsBytes);
  // Cut: drop the partial last line rather than parse half a path.
  if (text && text->size() == kMaxMapsBytes) text->resize(text->rfind('\n') + 1);
  return text;
}

std::optional<std::string> read_cmdline(std::uint32_t pid, const std::string& proc_root) {
  auto c = read_file_prefix(pid_dir(pid, proc_root) + "/cmdline", kMaxCmdlineBytes);
  if (!c) return std::nullopt;
  return join_cmdline(std::move(*c));
}

std::string join_cmdline(std::string raw) {
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  std::replace(raw.begin(), raw.end(), '\0', ' ');
  return raw;
}

std::optional<std::uint32_t> parent_pid(std::uint32_t pid, const std::string& proc_root) {
  const auto stat = read_stat(pid, proc_root);
  if (!stat) return std::nullopt;
  const auto ppid = parse_stat_ppid(*stat);
  if (!ppid || *ppid <= 1) return std::nullopt;
  return ppid;
}

bool is_deleted(std::string_view path) {
  // The kernel marks files replaced on disk (e.g. by an upgrade) this way.
  constexpr std::string_view kDeleted = " (deleted)";
  return path.size() > kDeleted.size() && path.ends_with(kDeleted);
}

std::string_view strip_deleted(std::string_view path) {
  if (is_deleted(path)) path.remove_suffix(std::string_view(" (deleted)").size());
  return path;
}

std::optional<std::pair<int, int>> python_version_numbers(std::string_view path) {
  // By hand, not std::regex: libstdc++'s matcher recurses per character, and
  // exe and maps paths are whatever the process's owner named them.
  std::string_view name = basename(strip_deleted(path));
  if (name.starts_with("lib")) name.remove_prefix(3);
  constexpr std::string_view kPrefix = "python3.";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  std::size_t i = kPrefix.size();
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return std::nullopt;
  int minor = 0;
  const auto [end, ec] = std::from_chars(name.data() + i, name.data() + name.size(), minor);
  if (ec != std::errc()) return std::nullopt;  // more digits than an int holds
  i = static_cast<std::size_t>(end - name.data());
  while (i < name.size() && name[i] >= 'a' && name[i] <= 'z') ++i;  // d (debug), t (free-threaded)
  if (i < name.size()) {
    if (name.substr(i, 3) != ".so") return std::nullopt;
    for (i += 3; i < name.size(); ++i)
      if (name[i] != '.' && !(name[i] >= '0' && name[i] <= '9')) return std::nullopt;
  }
  return std::make_pair(3, minor);
}

std::optional<std::string> python_version_from_path(std::string_view path) {
  const auto v = python_version_numbers(path);
  if (!v) return std::nullopt;
  return std::to_string(v->first) + "." + std::to_string(v->second);
}

std::vector<std::uint32_t> process_ids(const std::string& proc_root) {
  return numeric_entries(proc_root);
}

bool process_exists(std::uint32_t pid, const std::string& proc_root) {
  return access(pid_dir(pid, proc_root).c_str(), F_OK) == 0;
}

std::vector<std::uint32_t> task_ids(std::uint32_t pid, const std::string& proc_root) {
  return numeric_entries(pid_dir(pid, proc_root) + "/task");
}

std::string thread_comm(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  auto comm = read_file_prefix(pid_dir(pid, proc_root) + "/task/" + std::to_string(tid) + "/comm", 64);
  if (!comm) return "";
  while (!comm->empty() && comm->back() == '\n') comm->pop_back();
  return *comm;
}

std::vector<std::string> target_file_paths(std::uint32_t pid, std::string_view path, std::uint64_t map_start,
                                           std::uint64_t map_end, const std::string& proc_root) {
  std::vector<std::string> out;
  const std::string dir = pid_dir(pid, proc_root);
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
