#include <doctest/doctest.h>
#include <unistd.h>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/procfs.hpp"

using namespace loopstall::native;

namespace {

const char* const kMaps =
    "00400000-0041f000 r--p 00000000 fe:00 100 /usr/bin/python3.11\n"
    "0041f000-006d2000 r-xp 0001f000 fe:00 100 /usr/bin/python3.11\n"
    "00945000-00a8a000 rw-p 00544000 fe:00 100 /usr/bin/python3.11\n"
    "01e4c000-01f6f000 rw-p 00000000 00:00 0                                  [heap]\n"
    "7f0000000000-7f0000100000 r--p 00000000 fe:00 200 /usr/lib/locale/locale-archive\n"
    "7f0000200000-7f0000226000 r--p 00000000 fe:00 300 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f0000226000-7f000037c000 r-xp 00026000 fe:00 300 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f000037c000-7f000037d000 ---p 00000000 00:00 0 \n"
    "7f000037d000-7f00003d0000 r--p 0017c000 fe:00 300 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "not a maps line\n"
    "7f0000400000-7f0000401000 r-xp 00001000 fe:00 400 /tmp/x/lib.so (deleted)\n"
    "7f0000500000-7f0000510000 rw-s 00000000 00:05 500 /dev/zero\n"
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]\n";

}  // namespace

TEST_CASE("parse_maps: fields, deleted files, malformed lines") {
  const auto maps = parse_maps(kMaps);
  REQUIRE(maps.size() == 13);  // the malformed line is dropped
  CHECK(maps[1].start == 0x41f000);
  CHECK(maps[1].end == 0x6d2000);
  CHECK(maps[1].offset == 0x1f000);
  CHECK(maps[1].executable);
  CHECK_FALSE(maps[1].writable);
  CHECK(maps[1].dev_major == 0xfe);
  CHECK(maps[1].inode == 100);
  CHECK(maps[1].path == "/usr/bin/python3.11");
  CHECK(maps[1].file_backed());
  CHECK_FALSE(maps[3].file_backed());  // [heap]
  CHECK(maps[3].path == "[heap]");
  CHECK(maps[7].path.empty());
  const Mapping& deleted = maps[9];
  CHECK(deleted.deleted());
  CHECK(deleted.file_path() == "/tmp/x/lib.so");
  CHECK(deleted.path == "/tmp/x/lib.so (deleted)");
}

TEST_CASE("code_modules: one span per ELF file with code, across anonymous gaps") {
  const auto maps = parse_maps(kMaps);
  const auto mods = code_modules(maps);
  REQUIRE(mods.size() == 4);
  CHECK(mods[0].path == "/usr/bin/python3.11");
  CHECK(mods[0].start == 0x400000);
  CHECK(mods[0].end == 0xa8a000);
  CHECK(mods[1].path == "/usr/lib/x86_64-linux-gnu/libc.so.6");  // locale-archive has no code
  CHECK(mods[1].start == 0x7f0000200000);
  CHECK(mods[1].end == 0x7f00003d0000);  // the ---p gap does not split it
  CHECK(maps[mods[1].first_mapping].offset == 0);
  CHECK(mods[2].path == "/tmp/x/lib.so (deleted)");
  CHECK(mods[3].vdso);
  CHECK(code_modules(parse_maps("")).empty());
}

TEST_CASE("code_modules: a recording out of order never gives a span that ends before it starts") {
  // fuzz/regressions/proc_maps: the second mapping of the file lies below the first.
  const auto mods =
      code_modules(parse_maps("7f0000002000-7f0000003000 r-xp 00002000 fe:00 42 /x/lib.so\n"
                              "7f0000000000-7f0000001000 r--p 00000000 fe:00 42 /x/lib.so\n"));
  REQUIRE(mods.size() == 1);
  CHECK(mods[0].start == 0x7f0000002000);
  CHECK(mods[0].end == 0x7f0000003000);
}

TEST_CASE("find_mapping: boundaries") {
  const auto maps = parse_maps(kMaps);
  CHECK(find_mapping(maps, 0x3fffff) == nullptr);
  CHECK(find_mapping(maps, 0x400000) == &maps[0]);
  CHECK(find_mapping(maps, 0x41efff) == &maps[0]);
  CHECK(find_mapping(maps, 0x41f000) == &maps[1]);
  CHECK(find_mapping(maps, 0x700000) == nullptr);
  CHECK(find_mapping(maps, ~0ull) == nullptr);
}

TEST_CASE("read_maps: self, and a pid that does not exist") {
  const auto self = loopstall::read_maps(static_cast<std::uint32_t>(::getpid()));
  REQUIRE(self.has_value());
  CHECK_FALSE(code_modules(parse_maps(*self)).empty());
  CHECK_FALSE(loopstall::read_maps(0x3fffffff).has_value());
}
