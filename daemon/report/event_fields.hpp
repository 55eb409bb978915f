// Reading fields of a stall event from a capture file: outside data, so a
// missing field or one of the wrong type reads as 0 / "" instead of throwing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace loopstall::event_fields {

inline double num(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

inline std::string str(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace loopstall::event_fields
