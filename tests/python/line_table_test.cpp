// Line-table decoders against tables recorded from the real interpreters
// (gen_line_table_data.py): every byte offset must give the line CPython gives.
#include <doctest/doctest.h>

#include <vector>

#include "loopstall/python/line_table.hpp"

using namespace loopstall::python;

namespace {

struct LineTableCase {
  int major, minor, firstlineno;
  std::vector<std::uint8_t> table;
  std::vector<int> lines;  // per byte offset, -1: no line
};

// clang-format off
const std::vector<LineTableCase> kCases = {
#include "line_table_data.inc"
};
// clang-format on

LineTableKind kind_for(int minor) {
  return minor <= 9 ? LineTableKind::kLnotab : minor == 10 ? LineTableKind::kLinetable : LineTableKind::kLocations;
}

}  // namespace

TEST_CASE("recorded line tables decode like CPython, every offset") {
  REQUIRE(kCases.size() == 6);
  for (const auto& c : kCases) {
    CAPTURE(c.minor);
    REQUIRE(offsets_for(c.major, c.minor) != nullptr);
    CHECK(offsets_for(c.major, c.minor)->line_table_kind == kind_for(c.minor));
    for (std::size_t off = 0; off < c.lines.size(); ++off) {
      CAPTURE(off);
      const auto line = line_for_offset(kind_for(c.minor), c.table, c.firstlineno, static_cast<std::int64_t>(off));
      if (c.lines[off] < 0) {
        CHECK_FALSE(line.has_value());
      } else {
        REQUIRE(line.has_value());
        CHECK(*line == c.lines[off]);
      }
    }
    // Not started yet (f_lasti -1, 3.11's prev_instr before the code): the def line.
    CHECK(line_for_offset(kind_for(c.minor), c.table, c.firstlineno, -1) == c.firstlineno);
  }
}

TEST_CASE("offsets past the table") {
  const std::vector<std::uint8_t> empty;
  CHECK(lnotab_line(empty, 7, 100) == 7);  // 3.8/3.9: last line extends to the end
  CHECK_FALSE(linetable310_line(empty, 7, 100));
  CHECK_FALSE(locations_line(empty, 7, 100));
  const std::vector<std::uint8_t> one = {0x80 | (13 << 3), 0x02};  // no-column form, 1 unit, line +1
  CHECK(locations_line(one, 7, 0) == 8);
  CHECK(locations_line(one, 7, 1) == 8);
  CHECK_FALSE(locations_line(one, 7, 2));
}

TEST_CASE("hostile tables never read out of bounds") {
  // Truncated varints, odd lengths, zero-length 3.10 ranges to the end, huge line deltas.
  const std::vector<std::vector<std::uint8_t>> tables = {
      {0xf0},
      {0xf0, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f},
      {0x00, 0x7f, 0x00, 0x7f, 0x00},
      {0x00, 0x80, 0x00},
      {0xff, 0x7f},
      {0x05},
  };
  for (const auto& t : tables) {
    for (std::int64_t off : {0, 1, 2, 100, 1 << 20}) {
      (void)lnotab_line(t, 1, off);
      (void)linetable310_line(t, 1, off);
      (void)locations_line(t, 1, off);
    }
  }
  // Lines that leave int range are unknown, not wrapped.
  const std::vector<std::uint8_t> big = {0x80 | (14 << 3), 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x3f};
  CHECK_FALSE(locations_line(big, 1, 0));
}
