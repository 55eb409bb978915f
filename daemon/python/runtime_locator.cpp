#include "loopstall/python/runtime_locator.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "loopstall/procinfo.hpp"

namespace loopstall::python {
namespace {

constexpr std::uint64_t kPage = 4096;

bool parse_hex(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  out = 0;
  for (const char c : s) {
    const int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                  : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                              : -1;
    if (d < 0) return false;
    out = out << 4 | static_cast<std::uint64_t>(d);
  }
  return true;
}

std::string_view next_field(std::string_view& line) {
  const auto start = line.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    line = {};
    return {};
  }
  line.remove_prefix(start);
  const auto end = line.find(' ');
  const std::string_view f = line.substr(0, end);
  line.remove_prefix(end == std::string_view::npos ? line.size() : end);
  return f;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// The file behind a mapping, as the process maps it (procinfo's target_file_paths: containers too).
std::optional<ElfSymbols> symbols_of_mapping(pid_t pid, const MapEntry& m, const std::vector<std::string_view>& want) {
  for (const std::string& candidate : target_file_paths(static_cast<std::uint32_t>(pid), m.path, m.start, m.end)) {
    if (auto syms = read_elf_symbols(candidate, want)) return syms;
  }
  return std::nullopt;
}

std::vector<MapEntry> maps_of(const std::vector<MapEntry>& maps, const std::string& path) {
  std::vector<MapEntry> out;
  for (const auto& m : maps) {
    if (m.path == path) out.push_back(m);
  }
  return out;
}

}  // namespace

std::vector<MapEntry> parse_maps(std::string_view text) {
  std::vector<MapEntry> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);

    MapEntry e;
    const std::string_view range = next_field(line);
    const auto dash = range.find('-');
    if (dash == std::string_view::npos || !parse_hex(range.substr(0, dash), e.start) ||
        !parse_hex(range.substr(dash + 1), e.end) || e.end <= e.start) {
      continue;
    }
    e.perms = std::string(next_field(line));
    if (!parse_hex(next_field(line), e.offset)) continue;
    next_field(line);  // dev
    const std::string_view inode = next_field(line);
    for (const char c : inode) e.inode = e.inode * 10 + static_cast<std::uint64_t>(c >= '0' && c <= '9' ? c - '0' : 0);
    const auto start = line.find_first_not_of(' ');
    if (start != std::string_view::npos) e.path = std::string(line.substr(start));
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<std::uint64_t> load_bias(const std::vector<LoadSegment>& loads, const std::vector<MapEntry>& file_maps,
                                       bool et_exec) {
  if (et_exec) return 0;
  const auto bias = [](const MapEntry& m, const LoadSegment& s) { return m.start - m.offset - (s.vaddr - s.offset); };
  // A mapping that starts at a segment's first page. Containment alone is ambiguous: the page holding the end
  // of one segment is usually also the first page of the next (mapped twice, with different vaddr - offset).
  for (const auto& m : file_maps) {
    for (const auto& s : loads) {
      if (m.offset == (s.offset & ~(kPage - 1))) return bias(m, s);
    }
  }
  // Otherwise (a segment split by mprotect, e.g. RELRO), the last segment starting at or before the mapping.
  for (const auto& m : file_maps) {
    const LoadSegment* best = nullptr;
    for (const auto& s : loads) {
      if ((s.offset & ~(kPage - 1)) <= m.offset && m.offset < s.offset + s.filesz &&
          (!best || s.offset > best->offset)) {
        best = &s;
      }
    }
    if (best) return bias(m, *best);
  }
  return std::nullopt;
}

std::optional<std::pair<int, int>> version_from_name(std::string_view path) {
  const std::string base = basename_of(path);
  for (std::size_t pos = base.find("python"); pos != std::string::npos; pos = base.find("python", pos + 1)) {
    std::size_t i = pos + 6;
    int major = 0, minor = 0;
    std::size_t digits = 0;
    while (i < base.size() && std::isdigit(static_cast<unsigned char>(base[i])) && digits < 3) {
      major = major * 10 + (base[i++] - '0');
      ++digits;
    }
    if (digits == 0 || i >= base.size() || base[i] != '.') continue;
    ++i;
    digits = 0;
    while (i < base.size() && std::isdigit(static_cast<unsigned char>(base[i])) && digits < 3) {
      minor = minor * 10 + (base[i++] - '0');
      ++digits;
    }
    if (digits > 0) return std::make_pair(major, minor);
  }
  return std::nullopt;
}

std::optional<PyRuntimeInfo> locate_runtime(pid_t pid, const Memory& mem) {
  const std::string proc = "/proc/" + std::to_string(pid);
  const std::vector<MapEntry> maps = parse_maps(read_text(proc + "/maps"));
  if (maps.empty()) return std::nullopt;
  char exe_buf[4096];
  const ssize_t n = ::readlink((proc + "/exe").c_str(), exe_buf, sizeof exe_buf - 1);
  const std::string exe = n > 0 ? std::string(exe_buf, static_cast<std::size_t>(n)) : std::string();

  // libpython first (shared builds), then the executable (static builds).
  std::vector<std::string> candidates;
  for (const auto& m : maps) {
    if (m.path.find("libpython") != std::string::npos &&
        std::find(candidates.begin(), candidates.end(), m.path) == candidates.end()) {
      candidates.push_back(m.path);
    }
  }
  if (!exe.empty()) candidates.push_back(exe);

  const std::vector<std::string_view> want = {"_PyRuntime", "Py_Version", "PyCode_Type", "PyUnicode_Type",
                                              "PyBytes_Type"};
  for (const auto& path : candidates) {
    const auto file_maps = maps_of(maps, path);
    if (file_maps.empty()) continue;
    const auto syms = symbols_of_mapping(pid, file_maps.front(), want);
    if (!syms || !syms->symbols.count("_PyRuntime")) continue;
    const auto bias = load_bias(syms->loads, file_maps, syms->et_exec);
    if (!bias) continue;
    auto addr = [&](std::string_view name) -> std::uint64_t {
      const auto it = syms->symbols.find(name);
      return it == syms->symbols.end() ? 0 : it->second + *bias;
    };

    PyRuntimeInfo info;
    info.runtime = addr("_PyRuntime");
    info.binary = path;
    info.types = {addr("PyCode_Type"), addr("PyUnicode_Type"), addr("PyBytes_Type")};
    auto version = version_from_name(path);
    if (!version) version = version_from_name(exe);
    // Py_Version (3.11+) is PY_VERSION_HEX: 0xMMmmppRS. It beats any file name.
    if (const std::uint64_t at = addr("Py_Version")) {
      if (const auto hex = mem.read_as<std::uint32_t>(at); hex && (*hex >> 24) == 3) {
        info.py_version_hex = *hex;
        version = std::make_pair(3, static_cast<int>((*hex >> 16) & 0xff));
      }
    }
    if (!version) return std::nullopt;
    info.major = version->first;
    info.minor = version->second;

    // glibc's libthread_db descriptor of struct pthread's tid (needed before 3.11).
    for (const auto& m : maps) {
      const std::string base = basename_of(m.path);
      if (base.rfind("libc.so", 0) != 0 && base.rfind("libc-", 0) != 0) continue;
      const auto libc = symbols_of_mapping(pid, m, {"_thread_db_pthread_tid"});
      const auto libc_bias = libc ? load_bias(libc->loads, maps_of(maps, m.path), libc->et_exec) : std::nullopt;
      if (libc_bias && libc->symbols.count("_thread_db_pthread_tid")) {
        info.pthread_tid_descriptor = libc->symbols.find("_thread_db_pthread_tid")->second + *libc_bias;
      }
      break;
    }
    return info;
  }
  return std::nullopt;
}

}  // namespace loopstall::python
