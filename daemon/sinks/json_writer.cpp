#include "loopstall/json_writer.hpp"

#include <cassert>
#include <charconv>

#include <nlohmann/json.hpp>

namespace loopstall {
namespace {

// Bytes nlohmann writes unchanged: printable ASCII but the quote and the
// backslash. Anything else (control characters, UTF-8, invalid bytes) goes
// through nlohmann's own escaping and replacement.
bool plain(std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

void JsonWriter::before_value() {
  if (after_key_)
    after_key_ = false;
  else if (!first_)
    out_ += ',';
  first_ = false;
}

void JsonWriter::open(char c) {
  before_value();
  out_ += c;
  first_ = true;
}

void JsonWriter::close(char c) {
  out_ += c;
  first_ = false;
}

void JsonWriter::key(std::string_view k) {
  assert(plain(k));  // our own names: nothing to escape
  if (!first_) out_ += ',';
  first_ = false;
  out_ += '"';
  out_ += k;
  out_ += "\":";
  after_key_ = true;
}

void JsonWriter::string(std::string_view s) {
  if (plain(s)) {
    out_ += '"';
    out_ += s;
    out_ += '"';
    return;
  }
  out_ += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void JsonWriter::value(std::string_view s) {
  before_value();
  string(s);
}

void JsonWriter::value(std::int64_t v) {
  before_value();
  char buf[24];
  out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void JsonWriter::value(std::uint64_t v) {
  before_value();
  char buf[24];
  out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
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
