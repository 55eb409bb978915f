// Regression mode for fuzz_frame_walker: runs every file under the given
// directories (or the given files) through the target, as a plain ctest test.
//   fuzz_frame_walker_replay DIR_OR_FILE...
//   fuzz_frame_walker_replay --write-seeds DIR   (synthetic images of every version)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "synthetic_image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

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

int run_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(buf.data()), buf.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") return write_seeds(argv[2]);
  std::size_t n = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) n += run_file(e.path()) == 0;
      }
    } else {
      n += run_file(p) == 0;
    }
  }
  std::printf("replayed %zu inputs\n", n);
  return n > 0 ? 0 : 1;
}
