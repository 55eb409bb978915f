// /proc/PID/maps text (paths are chosen by whoever maps a file) through the
// one parser (native/proc_maps) and what its users do next: the unwinder's
// find_mapping and code_modules, the runtime locator's load_bias and
// python_version_numbers, the deleted-file handling. Invariants the callers
// rely on are checked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/procfs.hpp"
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
    const std::string file = maps[i].file_path();
    if (maps[i].deleted() != (file.size() != maps[i].path.size())) std::abort();
    if (const auto v = loopstall::python_version_numbers(maps[i].path); v && (v->first != 3 || v->second < 0))
      std::abort();
  }
  for (const native::Mapping& m : maps) {
    const native::Mapping* found = native::find_mapping(maps, m.start);
    if (sorted && found != &m) std::abort();
    (void)native::find_mapping(maps, m.end - 1);
  }
  for (const native::ModuleSpan& s : native::code_modules(maps)) {
    if (s.first_mapping >= maps.size() || s.end <= s.start) std::abort();
  }

  // Load bias from made-up segments: the first mappings' numbers as PT_LOADs.
  std::vector<python::LoadSegment> loads;
  for (std::size_t i = 0; i < maps.size() && i < 4; ++i) {
    loads.push_back({maps[i].offset, maps[i].start & 0xffffff, maps[i].end - maps[i].start});
  }
  (void)python::load_bias(loads, maps, false);
  return 0;
}
