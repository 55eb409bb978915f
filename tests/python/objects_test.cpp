// str/bytes objects copied out of (fake) target memory.
#include <doctest/doctest.h>

#include <string>

#include "fake_memory.hpp"
#include "loopstall/python/py_objects.hpp"

using namespace loopstall::python;
using loopstall::python::testing::FakeMemory;

namespace {

constexpr std::uint64_t kStr = 0x10000;
constexpr std::uint64_t kStrType = 0x5000;

// A compact str as CPython lays it out: kind 1/2/4, ascii flag, data after the header.
void put_str(FakeMemory& m, const PyOffsets& o, std::uint64_t addr, const std::u32string& s, unsigned kind,
             bool ascii) {
  const std::size_t data = ascii ? o.unicode_ascii_data : o.unicode_compact_data;
  m.map(addr, data + (s.size() + 1) * kind);
  m.put<std::uint64_t>(addr + o.object_type, kStrType);
  m.put<std::int64_t>(addr + o.unicode_length, static_cast<std::int64_t>(s.size()));
  m.put<std::uint32_t>(addr + o.unicode_state, (kind << 2) | (1u << 5) | (ascii ? 1u << 6 : 0) | (1u << 7));
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::uint32_t c = s[i];
    m.write(addr + data + i * kind, &c, kind);  // little-endian: the low `kind` bytes
  }
}

}  // namespace

TEST_CASE("compact str in every kind, every layout") {
  for (const PyOffsets* o : {&kPy38, &kPy311, &kPy312, &kPy313}) {
    CAPTURE(o->minor);
    FakeMemory m;
    put_str(m, *o, kStr, U"Klass.method", 1, true);
    CHECK(read_unicode(m, *o, kStr) == "Klass.method");
    CHECK(read_unicode(m, *o, kStr, kStrType) == "Klass.method");
    CHECK_FALSE(read_unicode(m, *o, kStr, kStrType + 8));  // not a str
    CHECK(read_unicode(m, *o, kStr, 0, 5) == "Klass");     // capped

    put_str(m, *o, kStr, U"caf\u00e9", 1, false);
    CHECK(read_unicode(m, *o, kStr) == "caf\xc3\xa9");
    put_str(m, *o, kStr, U"\u043a\u043b\u044e\u0447", 2, false);
    CHECK(read_unicode(m, *o, kStr) == "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87");
    put_str(m, *o, kStr, U"f\U0001F600", 4, false);
    CHECK(read_unicode(m, *o, kStr) == "f\xf0\x9f\x98\x80");
    put_str(m, *o, kStr, U"", 1, true);
    CHECK(read_unicode(m, *o, kStr) == "");
  }
}

TEST_CASE("hostile str headers") {
  const PyOffsets& o = kPy311;
  FakeMemory m;
  put_str(m, o, kStr, U"abc", 1, true);
  m.put<std::int64_t>(kStr + o.unicode_length, -1);
  CHECK_FALSE(read_unicode(m, o, kStr));
  m.put<std::int64_t>(kStr + o.unicode_length, 1ll << 40);  // far past the mapping, capped then fails
  CHECK_FALSE(read_unicode(m, o, kStr));
  m.put<std::int64_t>(kStr + o.unicode_length, 3);
  m.put<std::uint32_t>(kStr + o.unicode_state, (3u << 2) | (1u << 5));  // kind 3 does not exist
  CHECK_FALSE(read_unicode(m, o, kStr));
  m.put<std::uint32_t>(kStr + o.unicode_state, (1u << 2));  // not compact
  CHECK_FALSE(read_unicode(m, o, kStr));
  m.put<std::uint32_t>(kStr + o.unicode_state, (2u << 2) | (1u << 5) | (1u << 6));  // "ASCII" but UCS2
  CHECK_FALSE(read_unicode(m, o, kStr));
  CHECK_FALSE(read_unicode(m, o, 0));
  CHECK_FALSE(read_unicode(m, o, kStr + 3));  // misaligned
  // Invalid code points still give valid UTF-8.
  put_str(m, o, kStr, {0xd800, 0x110000, U'x'}, 4, false);
  CHECK(read_unicode(m, o, kStr) == "\xef\xbf\xbd\xef\xbf\xbdx");
  put_str(m, o, kStr, U"ab", 1, true);
  m.put<std::uint8_t>(kStr + o.unicode_ascii_data, 0xe9);  // lying ASCII flag
  CHECK(read_unicode(m, o, kStr) ==
        "\xef\xbf\xbd"
        "b");
}

TEST_CASE("bytes objects") {
  const PyOffsets& o = kPy310;
  FakeMemory m;
  m.map(kStr, 64);
  m.put<std::uint64_t>(kStr + o.object_type, kStrType);
  m.put<std::int64_t>(kStr + o.bytes_size, 4);
  m.put<std::uint32_t>(kStr + o.bytes_data, 0x04030201);
  CHECK(read_bytes(m, o, kStr) == std::vector<std::uint8_t>{1, 2, 3, 4});
  CHECK_FALSE(read_bytes(m, o, kStr, kStrType + 8));
  CHECK_FALSE(read_bytes(m, o, kStr, 0, 3));  // over the cap
  m.put<std::int64_t>(kStr + o.bytes_size, -5);
  CHECK_FALSE(read_bytes(m, o, kStr));
  m.put<std::int64_t>(kStr + o.bytes_size, 1000);  // past the mapping
  CHECK_FALSE(read_bytes(m, o, kStr));
}
