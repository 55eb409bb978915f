// Appends JSON text to a string without building a tree: for the stall
// event, written once per report, where nlohmann's tree (one allocation per
// frame, key and value) cost most of the report. The bytes are exactly those
// nlohmann::json::dump(-1, ' ', false, error_handler_t::replace) writes for
// the same values (tests/unit/test_json.cpp compares them).
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
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
  // Room for a value of exactly n bytes of JSON text the caller writes
  // there (one resize instead of an append per piece, for what a report
  // repeats hundreds of times).
  char* raw_value(std::size_t n) {
    before_value();
    const std::size_t at = out_.size();
    out_.resize(at + n);
    return out_.data() + at;
  }

  // Bytes nlohmann writes unchanged: printable ASCII but the quote and the
  // backslash. Anything else (control characters, UTF-8, invalid bytes) goes
  // through nlohmann's own escaping and replacement.
  // Eight bytes at a time (a report checks ~10 KB of frame strings; byte by
  // byte that was most of writing it).
  static bool plain(std::string_view s) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, sizeof w);
      const std::uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
      // Per byte: below 0x20, equal to a quote or backslash (zero after the
      // xor), or above 0x7e. Exact as a yes/no for the whole word.
      const std::uint64_t below = (w - kOnes * 0x20) & ~w;
      const std::uint64_t zero = ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash);
      const std::uint64_t above = (w + kOnes) | w;
      if ((below | zero | above) & kHighs) return false;
    }
    for (; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
    }
    return true;
  }

 private:
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
