// /proc/PID/maps: which file is mapped where. The one parser of maps text
// (read by procfs.hpp's read_maps): process classification, the CPython
// runtime locator and the unwinder, which reports one module per mapped ELF
// file and opens exactly the file the process maps.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loopstall::native {

struct Mapping {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t offset = 0;  // file offset of `start`
  bool readable = false;
  bool writable = false;
  bool executable = false;
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
  std::uint64_t inode = 0;
  std::string path;  // verbatim: "" when anonymous, "[stack]", "/x/y.so (deleted)"

  bool file_backed() const { return inode != 0 && !path.empty() && path.front() == '/'; }
  bool deleted() const;
  // The path without a " (deleted)" suffix.
  std::string file_path() const;
};

// Malformed lines are skipped (the text may come from a recording).
std::vector<Mapping> parse_maps(std::string_view text);

// The mapping holding addr, or nullptr. `maps` must be sorted (as the kernel
// prints them).
const Mapping* find_mapping(const std::vector<Mapping>& maps, std::uint64_t addr);

// One mapped ELF file: consecutive mappings of the same file, skipping
// anonymous gaps between them (the loader's alignment padding), as elfutils'
// own maps reader does.
struct ModuleSpan {
  std::string path;  // verbatim, as in Mapping::path ("[vdso]" for the vDSO)
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::size_t first_mapping = 0;  // index in the maps vector
  bool executable = false;        // some mapping of it is executable
  bool vdso = false;
};

// Only spans with code (an executable mapping) matter for unwinding; data
// files (locale archives, sqlite databases) are left out so they are never
// opened.
std::vector<ModuleSpan> code_modules(const std::vector<Mapping>& maps);

}  // namespace loopstall::native
