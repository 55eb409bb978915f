// Line-table decoders. The table comes from another process: every index is
// checked against the span, every loop consumes at least one byte, and line
// arithmetic is done in 64 bits and range-checked at the end.
#include "loopstall/python/line_table.hpp"

#include <limits>

namespace loopstall::python {
namespace {

constexpr std::int64_t kLineLimit = std::int64_t{1} << 40;

std::optional<int> as_line(std::int64_t line) {
  if (line < 0 || line > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(line);
}

// Objects/locations.md varints: 6 bits per byte, 0x40 = more follows.
std::uint64_t read_varint(std::span<const std::uint8_t> t, std::size_t i) {
  std::uint64_t value = 0;
  for (unsigned shift = 0; i < t.size() && shift < 36; shift += 6, ++i) {
    value |= static_cast<std::uint64_t>(t[i] & 63) << shift;
    if (!(t[i] & 64)) break;
  }
  return value;
}

std::int64_t read_signed_varint(std::span<const std::uint8_t> t, std::size_t i) {
  const std::uint64_t u = read_varint(t, i);
  return (u & 1) ? -static_cast<std::int64_t>(u >> 1) : static_cast<std::int64_t>(u >> 1);
}

}  // namespace

std::optional<int> lnotab_line(std::span<const std::uint8_t> table, int firstlineno, std::int64_t offset) {
  std::int64_t line = firstlineno;
  std::int64_t addr = 0;
  for (std::size_t i = 0; i + 1 < table.size(); i += 2) {
    addr += table[i];
    if (addr > offset) break;
    line += static_cast<std::int8_t>(table[i + 1]);
  }
  return as_line(line);
}

std::optional<int> linetable310_line(std::span<const std::uint8_t> table, int firstlineno, std::int64_t offset) {
  std::int64_t start = -1;
  std::int64_t end = 0;
  std::int64_t line = firstlineno;
  std::int64_t range_line = -1;  // -1: this range has no line
  std::size_t i = 0;
  // Address ranges of zero length only move the line: advance past them, as
  // PyLineTable_NextAddressRange does.
  while (end <= offset) {
    do {
      if (i + 1 >= table.size()) return std::nullopt;
      start = end;
      end += table[i];
      const auto delta = static_cast<std::int8_t>(table[i + 1]);
      i += 2;
      if (delta == -128) {
        range_line = -1;
      } else {
        line += delta;
        range_line = line;
      }
    } while (start == end);
  }
  return as_line(range_line);
}

std::optional<int> locations_line(std::span<const std::uint8_t> table, int firstlineno, std::int64_t offset) {
  std::int64_t line = firstlineno;
  std::int64_t addr = 0;  // bytes
  std::size_t i = 0;
  while (i < table.size()) {
    const std::uint8_t first = table[i];
    const int code = (first >> 3) & 15;
    switch (code) {
      case 15: break;  // no location
      case 14:         // long form
      case 13:         // no column
        line += read_signed_varint(table, i + 1);
        break;
      case 10:
      case 11:
      case 12: line += code - 10; break;  // one-line forms
      default: break;                     // short forms: same line
    }
    if (line > kLineLimit || line < -kLineLimit) return std::nullopt;  // garbage; keeps the sum from overflowing
    const std::int64_t end = addr + 2 * ((first & 7) + 1);
    if (offset >= addr && offset < end) return code == 15 ? std::nullopt : as_line(line);
    addr = end;
    // Entries start with bit 7 set; payload bytes never have it.
    do ++i;
    while (i < table.size() && !(table[i] & 0x80));
  }
  return std::nullopt;
}

std::optional<int> line_for_offset(LineTableKind kind, std::span<const std::uint8_t> table, int firstlineno,
                                   std::int64_t offset) {
  if (offset < 0) return as_line(firstlineno);
  switch (kind) {
    case LineTableKind::kLnotab: return lnotab_line(table, firstlineno, offset);
    case LineTableKind::kLinetable: return linetable310_line(table, firstlineno, offset);
    case LineTableKind::kLocations: return locations_line(table, firstlineno, offset);
  }
  return std::nullopt;
}

}  // namespace loopstall::python
