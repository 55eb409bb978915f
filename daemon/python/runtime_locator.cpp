#include "loopstall/python/runtime_locator.hpp"

#include <algorithm>

#include "loopstall/procfs.hpp"

namespace loopstall::python {
namespace {

constexpr std::uint64_t kPage = 4096;

std::string basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// The file behind a mapping, as the process maps it (procfs's target_file_paths: containers too).
std::optional<ElfSymbols> symbols_of_mapping(pid_t pid, const native::Mapping& m,
                                             const std::vector<std::string_view>& want) {
  for (const std::string& candidate : target_file_paths(static_cast<std::uint32_t>(pid), m.path, m.start, m.end)) {
    if (auto syms = read_elf_symbols(candidate, want)) return syms;
  }
  return std::nullopt;
}

std::vector<native::Mapping> maps_of(const std::vector<native::Mapping>& maps, const std::string& path) {
  std::vector<native::Mapping> out;
  for (const auto& m : maps) {
    if (m.path == path) out.push_back(m);
  }
  return out;
}

}  // namespace

std::optional<std::uint64_t> load_bias(const std::vector<LoadSegment>& loads,
                                       const std::vector<native::Mapping>& file_maps, bool et_exec) {
  if (et_exec) return 0;
  const auto bias = [](const native::Mapping& m, const LoadSegment& s) {
    return m.start - m.offset - (s.vaddr - s.offset);
  };
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

std::optional<PyRuntimeInfo> locate_runtime(pid_t pid, const Memory& mem) {
  const auto text = read_maps(static_cast<std::uint32_t>(pid));
  const std::vector<native::Mapping> maps = native::parse_maps(text.value_or(""));
  if (maps.empty()) return std::nullopt;
  const std::string exe = read_link("/proc/" + std::to_string(pid) + "/exe");

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
    auto version = python_version_numbers(path);
    if (!version) version = python_version_numbers(exe);
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
