// Appends JSON text to a string without building a tree: for the stall
// event, written once per report, where nlohmann's tree (one allocation per
// frame, key and value) cost most of the report. The bytes are exactly those
// nlohmann::json::dump(-1, ' ', false, error_handler_t::replace) writes for
// the same values (tests/unit/test_json.cpp compares them).
#pragma once

#include <charconv>
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
  void key(std::string_view k) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\":";
    after_key_ = true;
  }

  void value(std::string_view s) {
    before_value();
    if (plain(s)) {
      out_ += '"';
      out_ += s;
      out_ += '"';
    } else {
      escaped(s);
    }
  }
  void value(const char* s) { value(std::string_view(s)); }
  void value(std::int64_t v) { integer(v); }
  void value(std::uint64_t v) { integer(v); }
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
  // Bytes nlohmann writes unchanged: printable ASCII but the quote and the
  // backslash. Anything else (control characters, UTF-8, invalid bytes) goes
  // through nlohmann's own escaping and replacement.
  static bool plain(std::string_view s) {
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
    }
    return true;
  }
  void before_value() {
    if (after_key_)
      after_key_ = false;
    else if (!first_)
      out_ += ',';
    first_ = false;
  }
  void open(char c) {
    before_value();
    out_ += c;
    first_ = true;
  }
  void close(char c) {
    out_ += c;
    first_ = false;
  }
  void escaped(std::string_view s);
  template <typename Int>
  void integer(Int v) {
    before_value();
    char buf[24];
    out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  }

  std::string& out_;
  bool first_ = true;       // nothing yet in the current object or array
  bool after_key_ = false;  // a key was written: its value needs no comma
};

}  // namespace loopstall
