// A plain main for a fuzz target: runs every file under the given
// directories (or the given files) through LLVMFuzzerTestOneInput once. The
// test build (gcc, ASan/UBSan) replays the seed corpus and the regression
// inputs with it as ctest tests; no libFuzzer needed.
//   fuzz_<target>_replay DIR_OR_FILE...
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void run_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(buf.data()), buf.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) run_file(e.path()), ++n;
      }
    } else if (std::filesystem::is_regular_file(p)) {
      run_file(p), ++n;
    }
  }
  std::printf("replayed %zu inputs\n", n);
  // A replay of nothing (a wrong path) must not pass silently.
  return n > 0 ? 0 : 1;
}
