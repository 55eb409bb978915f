// Writes sample_reports() through JsonLinesSink, exactly as `loopstall
// capture --format json` would, to the file named by argv[1]. The json_schema
// ctest validates the result against the contract's schema.
#include <cstdio>

#include "loopstall/json_sink.hpp"
#include "loopstall/output.hpp"
#include "sample_reports.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT.jsonl\n", argv[0]);
    return 2;
  }
  try {
    const auto out = loopstall::RecordFile::open(argv[1], false);
    int err = 0;
    loopstall::JsonLinesSink sink([&](std::string_view s) { err = err ? err : out->write(s); });
    for (const auto& r : loopstall::test::sample_reports()) sink.stall(r);
    return err ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
