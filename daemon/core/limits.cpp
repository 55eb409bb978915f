#include "loopstall/limits.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace loopstall {

std::string range_error(double v, double min, double max) {
  if (std::isfinite(v) && v >= min && v <= max) return "";
  std::ostringstream os;
  os << std::setprecision(12) << "must be a number from " << min << " to " << max << " (got " << v << ")";
  return os.str();
}

}  // namespace loopstall
