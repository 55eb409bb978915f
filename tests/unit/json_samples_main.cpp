// Writes sample_reports() through JsonLinesSink, exactly as `loopstall
// capture --format json` would, to the file named by argv[1]. The json_schema
// ctest validates the result against the contract's schema.
#include <cstdio>

#include "loopstall/json_sink.hpp"
#include "sample_reports.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT.jsonl\n", argv[0]);
    return 2;
  }
  std::FILE* out = std::fopen(argv[1], "w");
  if (!out) {
    std::perror(argv[1]);
    return 1;
  }
  loopstall::JsonLinesSink sink(loopstall::file_writer(out));
  for (const auto& r : loopstall::test::sample_reports()) sink.stall(r);
  return std::fclose(out) == 0 ? 0 : 1;
}
