// CLI11 checks shared by `loopstall` and `loopstalld` (header-only, like
// CLI11: the service library does not link it).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "loopstall/limits.hpp"

namespace loopstall {

// A finite number in [min, max]. CLI::PositiveNumber and CLI::Range both let
// "nan" through (every comparison with NaN is false), and PositiveNumber
// takes 1e300, which overflows the u64 nanoseconds the kernel compares.
inline CLI::Validator finite_range(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& s) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(s, v)) return "not a number: " + s;
        return range_error(v, min, max);
      },
      "NUMBER", "finite_range");
}

}  // namespace loopstall
