// Load bias from real maps, version names and ELF symbol lookup.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "loopstall/procfs.hpp"
#include "loopstall/python/runtime_locator.hpp"

using namespace loopstall::python;

namespace {

// Real maps of pyenv's python3.12 (PIE executable + libpython whose RW segment has p_vaddr != p_offset).
constexpr const char* kMaps =
    "55967f4e5000-55967f4e6000 r--p 00000000 fe:00 73383                      "
    "/root/.pyenv/versions/3.12.1/bin/python3.12\n"
    "55967f4e6000-55967f4e7000 r-xp 00001000 fe:00 73383                      "
    "/root/.pyenv/versions/3.12.1/bin/python3.12\n"
    "7ff478200000-7ff478306000 r--p 00000000 fe:00 73606                      "
    "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0\n"
    "7ff478306000-7ff478579000 r-xp 00106000 fe:00 73606                      "
    "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0\n"
    "7ff4786cd000-7ff478744000 r--p 004cc000 fe:00 73606                      "
    "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0\n"
    "7ff478744000-7ff4788b4000 rw-p 00543000 fe:00 73606                      "
    "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0\n"
    "7ff4788b4000-7ff4788d0000 rw-p 00000000 00:00 0 \n"
    "garbage line\n"
    "7ffd1c9e0000-7ffd1ca01000 rw-p 00000000 00:00 0                          [stack]";

// readelf -lW libpython3.12.so.1.0 (3.12.1)
const std::vector<LoadSegment> kLibLoads = {{0x000000, 0x000000, 0x105130},
                                            {0x106000, 0x106000, 0x272ec9},
                                            {0x379000, 0x379000, 0x1530c8},
                                            {0x4cd6d0, 0x4cc6d0, 0x1e6118}};

}  // namespace

TEST_CASE("load bias: shared library, PIE, non-PIE") {
  const auto maps = loopstall::native::parse_maps(kMaps);
  REQUIRE(maps.size() == 8);  // the garbage line skipped
  std::vector<loopstall::native::Mapping> lib(maps.begin() + 2, maps.begin() + 6);
  CHECK(load_bias(kLibLoads, lib, false) == 0x7ff478200000);
  // Only the RW segment's mappings left (p_vaddr - p_offset = 0x1000 there): same bias. Its first page
  // (file offset 0x4cc000) also holds the end of the previous segment; the second mapping is split by RELRO.
  CHECK(load_bias(kLibLoads, {lib[2]}, false) == 0x7ff478200000);
  CHECK(load_bias(kLibLoads, {lib[3]}, false) == 0x7ff478200000);
  CHECK(load_bias(kLibLoads, {lib[1]}, false) == 0x7ff478200000);
  const std::vector<LoadSegment> exe_loads = {{0, 0, 0x760}, {0x1000, 0x1000, 0x155}};
  CHECK(load_bias(exe_loads, {maps[1]}, false) == 0x55967f4e5000);
  // Debian's /usr/bin/python3.11 is ET_EXEC: symbols are absolute.
  CHECK(load_bias({{0x400000, 0, 0x1e3e8}}, {maps[0]}, true) == 0);
  CHECK_FALSE(load_bias(kLibLoads, {}, false));
}

TEST_CASE("version from file names (procfs's parser, as the locator uses it)") {
  using V = std::pair<int, int>;
  using loopstall::python_version_numbers;
  CHECK(python_version_numbers("/usr/bin/python3.11") == V{3, 11});
  CHECK(python_version_numbers("/root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0") == V{3, 9});
  CHECK(python_version_numbers("/usr/lib/x86_64-linux-gnu/libpython3.13.so") == V{3, 13});
  CHECK(python_version_numbers("python3.12d") == V{3, 12});
  CHECK_FALSE(python_version_numbers("/usr/bin/python3"));
  CHECK_FALSE(python_version_numbers("/opt/python3.11/bin/python"));  // only the file name counts
  CHECK_FALSE(python_version_numbers(""));
}

TEST_CASE("ELF symbols: static and shared builds") {
  if (std::filesystem::exists("/usr/bin/python3.11")) {
    const auto syms = read_elf_symbols("/usr/bin/python3.11", {"_PyRuntime", "Py_Version", "PyCode_Type", "nope"});
    REQUIRE(syms);
    CHECK(syms->et_exec);
    CHECK(syms->symbols.count("_PyRuntime"));
    CHECK(syms->symbols.count("Py_Version"));
    CHECK(syms->symbols.count("PyCode_Type"));
    CHECK_FALSE(syms->symbols.count("nope"));
  }
  const std::string lib =
      std::string(getenv("HOME") ? getenv("HOME") : "/root") + "/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0";
  if (std::filesystem::exists(lib)) {
    const auto syms = read_elf_symbols(lib, {"_PyRuntime"});
    REQUIRE(syms);
    CHECK_FALSE(syms->et_exec);
    CHECK(syms->loads.size() == 4);
    CHECK(syms->symbols.count("_PyRuntime"));
  }
  // An undefined reference (the pyenv executable imports _PyRuntime) is not a definition.
  const std::string exe =
      std::string(getenv("HOME") ? getenv("HOME") : "/root") + "/.pyenv/versions/3.12.1/bin/python3.12";
  if (std::filesystem::exists(exe)) {
    const auto syms = read_elf_symbols(exe, {"_PyRuntime"});
    REQUIRE(syms);
    CHECK_FALSE(syms->symbols.count("_PyRuntime"));
  }
  CHECK_FALSE(read_elf_symbols("/nonexistent", {"x"}));
  CHECK_FALSE(read_elf_symbols("/proc/self/status", {"x"}));
}

TEST_CASE("ELF symbols: a FIFO at a mapped file's path does not block") {
  // The locator falls back to /proc/PID/root + the mapped path, which the
  // process's owner can replace with a FIFO (SIGALRM fails the test).
  const std::string fifo = std::filesystem::temp_directory_path() / ("loopstall-fifo-" + std::to_string(getpid()));
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  alarm(10);
  CHECK_FALSE(read_elf_symbols(fifo, {"_PyRuntime"}));
  alarm(0);
  unlink(fifo.c_str());
}

TEST_CASE("a process that is not Python") {
  loopstall::ProcessMemory self(getpid());
  CHECK_FALSE(locate_runtime(getpid(), self));
  CHECK_FALSE(locate_runtime(0x7ffffff0, self));
}
