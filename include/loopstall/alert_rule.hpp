// One alert rule of the daemon's configuration ("alerts.rules"), as the
// alert sink (alerts.hpp) applies it; parsed and checked by config.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace loopstall {

struct AlertRule {
  enum class Kind { Stall, Frequent, Hung };
  std::string name;
  std::string severity = "warning";
  std::map<std::string, std::string> labels;
  Kind kind = Kind::Stall;
  double stall_ms = 0;       // Stall: any single stall >= stall_ms
  std::uint32_t stalls = 0;  // Frequent: >= stalls stalls >= min_ms in window_s, per service
  double min_ms = 0;
  double window_s = 0;
  double hung_s = 0;  // Hung: a loop hung >= hung_s, fired while hung
};

}  // namespace loopstall
