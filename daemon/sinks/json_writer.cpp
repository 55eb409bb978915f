#include "loopstall/json_writer.hpp"

#include <nlohmann/json.hpp>

namespace loopstall {

void JsonWriter::escaped(std::string_view s) {
  out_ += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void JsonWriter::value(double v) {
  before_value();
  // nlohmann's float format (shortest round trip, "1.0" not "1", null for
  // NaN and infinities): the same digits as before, and a short string.
  out_ += nlohmann::json(v).dump();
}

void JsonWriter::value(bool v) {
  before_value();
  out_ += v ? "true" : "false";
}

void JsonWriter::null() {
  before_value();
  out_ += "null";
}

}  // namespace loopstall
