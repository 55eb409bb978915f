// Appends JSON text to a string without building a tree: for the stall
// event, written once per report, where nlohmann's tree (one allocation per
// frame, key and value) cost most of the report. The bytes are exactly those
// nlohmann::json::dump(-1, ' ', false, error_handler_t::replace) writes for
// the same values (tests/unit/test_json.cpp compares them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loopstall {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }
  // The key of the next value in the current object: printable ASCII
  // without quotes or backslashes (written as is).
  void key(std::string_view k);

  void value(std::string_view s);
  void value(const char* s) { value(std::string_view(s)); }
  void value(std::int64_t v);
  void value(std::uint64_t v);
  void value(int v) { value(static_cast<std::int64_t>(v)); }
  void value(std::uint32_t v) { value(static_cast<std::uint64_t>(v)); }
  void value(double v);
  void value(bool v);
  void null();
  template <typename T>
  void value(const std::optional<T>& v) {
    if (v)
      value(*v);
    else
      null();
  }

 private:
  void before_value();
  void open(char c);
  void close(char c);
  void string(std::string_view s);

  std::string& out_;
  bool first_ = true;       // nothing yet in the current object or array
  bool after_key_ = false;  // a key was written: its value needs no comma
};

}  // namespace loopstall
