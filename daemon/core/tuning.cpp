#include "loopstall/tuning.hpp"

namespace loopstall {

std::string Tuning::error() const {
  if (auto why = range_error(threshold_ms, kMinThresholdMs, kMaxThresholdMs); !why.empty())
    return "threshold_ms " + why;
  if (sample_hz == 0) return "";
  if (auto why = range_error(sample_hz, kMinSampleHz, kMaxSampleHz); !why.empty()) return "sample_hz " + why;
  return "";
}

}  // namespace loopstall
