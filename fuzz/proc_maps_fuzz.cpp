// /proc/PID/maps text (paths are chosen by whoever maps a file) through both
// readers: the unwinder's (native/proc_maps) and the runtime locator's, with
// what each does next (find_mapping, code_modules, load_bias,
// version_from_name). Invariants the callers rely on are checked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/python/runtime_locator.hpp"

namespace native = loopstall::native;
namespace python = loopstall::python;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::vector<native::Mapping> maps = native::parse_maps(text);
  // find_mapping wants the kernel's order (sorted, disjoint); any text must
  // still never make it read outside the vector.
  bool sorted = true;
  for (std::size_t i = 0; i < maps.size(); ++i) {
    if (maps[i].end <= maps[i].start) std::abort();
    if (i > 0 && maps[i].start < maps[i - 1].end) sorted = false;
    (void)maps[i].file_path();
  }
  for (const native::Mapping& m : maps) {
    const native::Mapping* found = native::find_mapping(maps, m.start);
    if (sorted && found != &m) std::abort();
    (void)native::find_mapping(maps, m.end - 1);
  }
  for (const native::ModuleSpan& s : native::code_modules(maps)) {
    if (s.first_mapping >= maps.size() || s.end <= s.start) std::abort();
  }

  const std::vector<python::MapEntry> entries = python::parse_maps(text);
  for (const python::MapEntry& e : entries) {
    if (e.end <= e.start) std::abort();
    (void)python::version_from_name(e.path);
  }
  // Load bias from made-up segments: the first entries' numbers as PT_LOADs.
  std::vector<python::LoadSegment> loads;
  for (std::size_t i = 0; i < entries.size() && i < 4; ++i) {
    loads.push_back({entries[i].offset, entries[i].start & 0xffffff, entries[i].end - entries[i].start});
  }
  (void)python::load_bias(loads, entries, false);
  return 0;
}
