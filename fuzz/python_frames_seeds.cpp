// Writes the python_frames seeds: a synthetic process image of every
// supported CPython version, with and without type checks and debug offsets.
//   fuzz_python_frames_seeds fuzz/corpus/python_frames
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "python_frames_input.hpp"
#include "synthetic_image.hpp"

using namespace loopstall::python;
using namespace loopstall::python::testing;

namespace {

int write_seeds(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const PyOffsets* tables[] = {&kPy38, &kPy39, &kPy310, &kPy311, &kPy312, &kPy313};
  for (unsigned v = 0; v < 6; ++v) {
    const PyOffsets& o = *tables[v];
    SynthFrame f{"inner", "Klass.inner", "/app/x.py", 3, {}, 0, false};
    f.table = o.line_table_kind == LineTableKind::kLocations ? std::vector<std::uint8_t>{0xe8, 0x02, 0xe8, 0x02}
                                                             : std::vector<std::uint8_t>{2, 1, 2, 1};
    f.offset = 2;
    SynthFrame shim;
    shim.shim = true;
    std::vector<SynthFrame> frames = {f, f};
    if (o.owner_cstack != kNoField) frames.insert(frames.begin() + 1, shim);
    const SynthImage img = build_image(o, {{4242, frames}, {4243, {f}}});
    for (std::uint8_t flags : {0, kFlagTypes | kFlagDebugOffsets}) {
      const auto bytes = encode_fuzz_input({v, flags, 4242}, img.mem);
      std::ofstream(dir / ("seed-3." + std::to_string(o.minor) + "-" + std::to_string(flags)), std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  return write_seeds(argv[1]);
}
