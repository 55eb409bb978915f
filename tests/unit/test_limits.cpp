// Bounds of outside values: the range check and the CLI11 check built on it.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "loopstall/cli_checks.hpp"
#include "loopstall/limits.hpp"

using namespace loopstall;

TEST_CASE("range_error: finite and within bounds only") {
  CHECK(range_error(100, kMinThresholdMs, kMaxThresholdMs).empty());
  CHECK(range_error(1, kMinThresholdMs, kMaxThresholdMs).empty());
  CHECK(range_error(3.6e6, kMinThresholdMs, kMaxThresholdMs).empty());
  CHECK(range_error(std::nan(""), 1, 10).find("got nan") != std::string::npos);
  CHECK_FALSE(range_error(std::numeric_limits<double>::infinity(), 1, 10).empty());
  CHECK_FALSE(range_error(1e300, kMinThresholdMs, kMaxThresholdMs).empty());
  CHECK_FALSE(range_error(0.5, kMinThresholdMs, kMaxThresholdMs).empty());
  CHECK(range_error(-1, 1, 3600000).find("from 1 to 3600000") != std::string::npos);
}

namespace {

// Exit code and message of parsing `--threshold-ms value`.
std::pair<int, std::string> parse_threshold(const std::string& value) {
  CLI::App app{"t"};
  double ms = 100;
  app.add_option("--threshold-ms", ms)->check(finite_range(kMinThresholdMs, kMaxThresholdMs));
  const char* argv[] = {"t", "--threshold-ms", value.c_str()};
  try {
    app.parse(3, argv);
  } catch (const CLI::ParseError& e) {
    return {e.get_exit_code(), e.what()};
  }
  return {0, ""};
}

}  // namespace

TEST_CASE("finite_range: --threshold-ms nan, inf, 1e300 are bad flags (exit 105)") {
  CHECK(parse_threshold("250").first == 0);
  CHECK(parse_threshold("1").first == 0);
  for (const char* bad : {"nan", "NaN", "inf", "-inf", "1e300", "1e400", "0", "-5", "0.5", "3600001", "abc", ""}) {
    CAPTURE(bad);
    const auto [code, what] = parse_threshold(bad);
    CHECK(code == 105);  // CLI::ExitCodes::ValidationError, README: 105-109
    CHECK(what.find("--threshold-ms") != std::string::npos);
  }
}
