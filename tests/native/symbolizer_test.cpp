#include <dlfcn.h>
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "loopstall/native/sdt_notes.hpp"
#include "loopstall/native/symbolizer.hpp"

using namespace loopstall::native;

extern "C" __attribute__((noinline, used)) int loopstall_symbolizer_test_function(int x) {
  return x * 3 + 1;
}

namespace {

struct Where {
  std::string file;
  std::uint64_t vaddr = 0;
};

// The file and ELF address of a function loaded in this process.
Where locate(const void* fn) {
  Dl_info info{};
  REQUIRE(dladdr(fn, &info) != 0);
  // The main executable's dli_fname may be a bare argv[0].
  std::string file = info.dli_fname;
  if (file.empty() || file.find('/') == std::string::npos) file = "/proc/self/exe";
  return {file, reinterpret_cast<std::uint64_t>(fn) - reinterpret_cast<std::uint64_t>(info.dli_fbase)};
}

}  // namespace

TEST_CASE("read_build_id") {
  const auto id = read_build_id("/usr/bin/python3.11");
  if (id) {
    CHECK(id->size() == 40);
    CHECK(id->find_first_not_of("0123456789abcdef") == std::string::npos);
  }
  CHECK(read_build_id("/proc/self/exe").has_value());
  CHECK_FALSE(read_build_id("/etc/passwd").has_value());
  CHECK_FALSE(read_build_id("/nonexistent/file").has_value());
  CHECK_FALSE(read_build_id("/dev/null").has_value());
}

TEST_CASE("ElfSymbolizer: .dynsym of a stripped system library") {
  void* fn = dlsym(RTLD_DEFAULT, "usleep");
  REQUIRE(fn != nullptr);
  const Where w = locate(fn);
  ElfSymbolizer s;
  CHECK(s.symbolize(w.file, w.vaddr) == "usleep");
  CHECK(s.symbolize(w.file, w.vaddr + 10) == "usleep");
  CHECK(s.symbolize(w.file, 0) == std::nullopt);
  CHECK(s.cached_files() == 1);
}

TEST_CASE("ElfSymbolizer: .symtab of this test binary") {
  CHECK(loopstall_symbolizer_test_function(1) == 4);
  const Where w = locate(reinterpret_cast<void*>(&loopstall_symbolizer_test_function));
  ElfSymbolizer s;
  CHECK(s.symbolize(w.file, w.vaddr + 1) == "loopstall_symbolizer_test_function");
}

TEST_CASE("ElfSymbolizer: file offsets to ELF addresses (non-PIE)") {
  ElfSymbolizer s;
  const std::string python = "/usr/bin/python3.11";
  if (!read_build_id(python)) return;
  // The text segment of Debian's python3.11 is at file offset 0x1f000 and
  // address 0x41f000; what matters is the segment's own delta.
  const auto v = s.file_offset_to_vaddr(python, 0x20000);
  REQUIRE(v.has_value());
  CHECK(*v - 0x20000 == 0x400000);
  CHECK_FALSE(s.file_offset_to_vaddr(python, 1ull << 40).has_value());
}

TEST_CASE("ElfSymbolizer: bad inputs, bounded cache") {
  ElfSymbolizer s(2);
  CHECK_FALSE(s.symbolize("/nonexistent", 0x1000).has_value());
  CHECK_FALSE(s.symbolize("/etc/passwd", 0x1000).has_value());
  CHECK_FALSE(s.symbolize("/dev/zero", 0x1000).has_value());
  CHECK_FALSE(s.file_offset_to_vaddr("/etc/passwd", 0).has_value());
  for (const char* f : {"/usr/bin/python3.11", "/proc/self/exe", "/bin/true", "/bin/ls"}) s.symbolize(f, 0x1000);
  CHECK(s.cached_files() <= 2);
}

TEST_CASE("read_sdt_notes: Debian's python3.11 has the gc probes, other files none, a FIFO does not block") {
  if (std::filesystem::exists("/usr/bin/python3.11")) {
    const SdtNotes n = read_sdt_notes("/usr/bin/python3.11");
    CHECK(n.any);
    CHECK(n.gc_start.has_value());
    CHECK(n.gc_done.has_value());
  }
  CHECK_FALSE(read_sdt_notes("/proc/self/exe").any);
  CHECK_FALSE(read_sdt_notes("/etc/passwd").any);
  CHECK_FALSE(read_sdt_notes("/nonexistent").any);
  // Where a process's deleted executable was, its owner may put a FIFO: an
  // open that waits for a writer would hang the daemon (SIGALRM fails the test).
  const std::string fifo = std::filesystem::temp_directory_path() / ("loopstall-fifo-" + std::to_string(getpid()));
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  alarm(10);
  CHECK_FALSE(read_sdt_notes(fifo).any);
  CHECK_FALSE(read_build_id(fifo).has_value());
  alarm(0);
  unlink(fifo.c_str());
}
