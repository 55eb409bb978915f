// Unwinding real interpreters blocked in (or running) C code, from
// snapshots taken the way the product takes them.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "doctest_helpers.hpp"
#include "loopstall/native/snapshot.hpp"
#include "loopstall/native/unwinder.hpp"

using namespace loopstall::native;
using namespace loopstall::native::test;
using namespace std::chrono_literals;

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is(const std::string& sym, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (sym == n) return true;
  }
  return false;
}

// usleep → libffi → the interpreter loop, in that order.
void check_ctypes_usleep(const std::vector<UnwoundFrame>& frames, const std::string& eval_module) {
  INFO(format_frames(frames));
  REQUIRE(frames.size() >= 4);
  CHECK(frames[0].frame.module.find("libc.so.6") != std::string::npos);
  CHECK(is(frames[0].frame.symbol, {"clock_nanosleep", "__GI___clock_nanosleep", "__clock_nanosleep"}));
  const int usleep = find_frame(
      frames, [](const std::string& s) { return s == "usleep"; }, "libc.so.6");
  const int ffi = find_frame(
      frames, [](const std::string& s) { return s.starts_with("ffi_call"); }, "libffi");
  const int eval = find_frame(
      frames, [](const std::string& s) { return s.starts_with("_PyEval_EvalFrame"); }, eval_module);
  CHECK(usleep > 0);
  CHECK(ffi > usleep);
  CHECK(eval > ffi);
  // offset is an address in the module's ELF address space: the file's own
  // symbol table (read without libdw) names the same function there.
  ElfSymbolizer symbolizer;
  for (const auto& f : frames) {
    if (f.frame.symbol.empty() || f.frame.module.ends_with(" (deleted)")) continue;
    const auto sym = symbolizer.symbolize(f.frame.module, f.frame.offset);
    if (sym) CHECK_MESSAGE(*sym == f.frame.symbol, f.frame.module << "+" << f.frame.offset);
  }
}

}  // namespace

TEST_CASE("live: Debian python3.11 (non-PIE) blocked in ctypes usleep, snapshot from /proc") {
  if (!have_root_or_skip("live unwind of python3.11")) return;
  Child child({kDebianPython, "-c", kUsleepScript});
  REQUIRE(child.read_line(10s) == "ready");
  REQUIRE(wait_in_syscall(child.pid(), kClockNanosleep, 10s));
  const auto snap = snapshot_blocked_thread(child.pid(), child.pid());
  REQUIRE(snap.has_value());
  CHECK(snap->regs.known == (UserRegs::kIp | UserRegs::kSp));
  NativeUnwinder unwinder;
  const auto frames = unwinder.unwind_frames(child.pid(), *snap);
  show_frames("python3.11 usleep", frames);
  check_ctypes_usleep(frames, kDebianPython);
  // Non-PIE: offsets are the link-time addresses, inside the text segment.
  const int eval = find_frame(frames, [](const std::string& s) { return s == "_PyEval_EvalFrameDefault"; });
  REQUIRE(eval > 0);
  CHECK(frames[eval].frame.offset > 0x400000);
  // In the file, the same address is 0x400000 lower (Debian's python3.11 maps its first segment,
  // file offset 0, at 0x400000, and the text segment keeps that difference).
  CHECK(frames[eval].file_offset == frames[eval].frame.offset - 0x400000);
  CHECK(frames.back().frame.symbol == "_start");
  // The warm path (cached Dwfl) gives the same answer.
  const auto again = unwinder.unwind(child.pid(), *snap);
  REQUIRE(again.size() == frames.size());
  for (std::size_t i = 0; i < again.size(); ++i) CHECK(again[i].symbol == frames[i].frame.symbol);
  CHECK(unwinder.stats().dwfl_builds == 1);
  CHECK(unwinder.stats().cache_hits == 1);
  // Without -dbgsym packages (as on a bare machine) the same frames, named
  // from .dynsym only.
  NativeUnwinder bare({.use_debug_files = false});
  const auto bare_frames = bare.unwind_frames(child.pid(), *snap);
  show_frames("python3.11 usleep, no debug files", bare_frames);
  check_ctypes_usleep(bare_frames, kDebianPython);
  REQUIRE(bare_frames.size() == frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) CHECK(bare_frames[i].frame.offset == frames[i].frame.offset);
}

TEST_CASE("live: pyenv python3.12 (PIE, shared libpython) blocked in ctypes usleep") {
  if (!have_root_or_skip("live unwind of pyenv python3.12")) return;
  const std::string python = home_dir() + "/.pyenv/versions/3.12.1/bin/python3.12";
  if (!exists(python)) {
    MESSAGE("SKIPPED: " << python << " is not installed");
    return;
  }
  Child child({python, "-c", kUsleepScript});
  REQUIRE(child.read_line(10s) == "ready");
  REQUIRE(wait_in_syscall(child.pid(), kClockNanosleep, 10s));
  const auto snap = snapshot_blocked_thread(child.pid(), child.pid());
  REQUIRE(snap.has_value());
  NativeUnwinder unwinder;
  const auto frames = unwinder.unwind_frames(child.pid(), *snap);
  check_ctypes_usleep(frames, "libpython3.12.so.1.0");
  // libpython has .symtab: static functions resolve too.
  INFO(format_frames(frames));
  CHECK(find_frame(
            frames, [](const std::string& s) { return s == "Py_BytesMain"; }, "libpython3.12.so.1.0") > 0);
  // main tail-calls Py_BytesMain; _start is the outermost frame. PIE: the
  // offset is relative to the load address.
  const int start = find_frame(
      frames, [](const std::string& s) { return s == "_start"; }, "bin/python3.12");
  REQUIRE(start > 0);
  CHECK(start == static_cast<int>(frames.size()) - 1);
  CHECK(frames[start].frame.offset < 0x10000);
}

TEST_CASE("live: SQLite query on CPU in python3.11, full registers via ptrace") {
  if (!have_root_or_skip("live unwind of sqlite3")) return;
  Child child({kDebianPython, "-c", kSqliteScript});
  REQUIRE(child.read_line(10s) == "ready");
  // Let it get into the query (it runs for seconds).
  std::this_thread::sleep_for(300ms);
  NativeUnwinder unwinder;
  // A sample may land outside libsqlite3 (malloc, the page cache): retry.
  std::vector<UnwoundFrame> frames;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const auto snap = ptrace_snapshot(child.pid());
    REQUIRE(snap.has_value());
    frames = unwinder.unwind_frames(child.pid(), *snap);
    if (!frames.empty() && frames[0].frame.module.find("libsqlite3.so.0") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  INFO(format_frames(frames));
  show_frames("sqlite3 on CPU", frames);
  REQUIRE(!frames.empty());
  // sqlite3VdbeExec is static (not in .dynsym): the innermost frames are in
  // libsqlite3 with or without a name; sqlite3_step is exported.
  CHECK(find_frame(
            frames, [](const std::string&) { return true; }, "libsqlite3.so.0") >= 0);
  const int step = find_frame(
      frames, [](const std::string& s) { return s == "sqlite3_step"; }, "libsqlite3.so.0");
  const int eval = find_frame(
      frames, [](const std::string& s) { return s.starts_with("_PyEval_EvalFrame"); }, kDebianPython);
  CHECK(step >= 0);
  CHECK(eval > step);
  // Full registers: no guessing needed.
  for (const auto& f : frames) CHECK_FALSE(f.recovered);
}

TEST_CASE("live: executable deleted and its path replaced while running") {
  if (!have_root_or_skip("live unwind of a deleted executable")) return;
  char dir_template[] = "/tmp/loopstall-native-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string copy = dir + "/python3.11";
  REQUIRE(std::system(("cp /usr/bin/python3.11 " + copy).c_str()) == 0);
  Child child({copy, "-c", kUsleepScript});
  REQUIRE(child.read_line(10s) == "ready");
  REQUIRE(wait_in_syscall(child.pid(), kClockNanosleep, 10s));
  // Another file now sits at the mapped path: only map_files has the real one.
  REQUIRE(std::system(("rm " + copy + " && cp /bin/true " + copy).c_str()) == 0);
  const auto snap = snapshot_blocked_thread(child.pid(), child.pid());
  REQUIRE(snap.has_value());
  NativeUnwinder unwinder;
  const auto frames = unwinder.unwind_frames(child.pid(), *snap);
  std::error_code ec;  // best effort: a leftover temp dir fails nothing
  std::filesystem::remove_all(dir, ec);
  show_frames("deleted executable", frames);
  check_ctypes_usleep(frames, copy + " (deleted)");
}

TEST_CASE("live: cache follows exec and survives the process's exit") {
  if (!have_root_or_skip("live unwind across exec")) return;
  const std::string python312 = home_dir() + "/.pyenv/versions/3.12.1/bin/python3.12";
  if (!exists(python312)) {
    MESSAGE("SKIPPED: " << python312 << " is not installed");
    return;
  }
  // python3.11 sleeps, then execs python3.12, which sleeps too.
  const std::string script =
      std::string("import ctypes, os, sys; print('first', flush=True); ") +
      "ctypes.CDLL('libc.so.6').usleep(1_500_000); " + "os.execv('" + python312 + "', ['" + python312 + "', '-c', \"" +
      "import ctypes; print('second', flush=True); ctypes.CDLL('libc.so.6').usleep(3_000_000)\"])";
  Child child({kDebianPython, "-c", script});
  REQUIRE(child.read_line(10s) == "first");
  REQUIRE(wait_in_syscall(child.pid(), kClockNanosleep, 10s));
  NativeUnwinder unwinder;
  auto snap = snapshot_blocked_thread(child.pid(), child.pid());
  REQUIRE(snap.has_value());
  check_ctypes_usleep(unwinder.unwind_frames(child.pid(), *snap), kDebianPython);

  REQUIRE(child.read_line(10s) == "second");
  REQUIRE(wait_in_syscall(child.pid(), kClockNanosleep, 10s));
  snap = snapshot_blocked_thread(child.pid(), child.pid());
  REQUIRE(snap.has_value());
  const auto after_exec = unwinder.unwind_frames(child.pid(), *snap);
  check_ctypes_usleep(after_exec, "libpython3.12.so.1.0");
  CHECK(unwinder.stats().dwfl_builds == 2);

  // The snapshot holds the whole stack and the Dwfl its files: a process
  // that is gone by the time its snapshot is unwound still gets its stack.
  const pid_t pid = child.pid();
  child.kill_and_wait();
  const auto after_exit = unwinder.unwind_frames(pid, *snap);
  REQUIRE(after_exit.size() == after_exec.size());
  for (std::size_t i = 0; i < after_exit.size(); ++i) CHECK(after_exit[i].frame.symbol == after_exec[i].frame.symbol);
  // Without a cached Dwfl there is nothing to go on.
  NativeUnwinder cold;
  CHECK(cold.unwind(pid, *snap).empty());
}

TEST_CASE("live: a non-main thread blocked in usleep, unwound to its start") {
  if (!have_root_or_skip("live unwind of a thread")) return;
  Child child({kDebianPython, "-c",
               "import ctypes, threading\n"
               "t = threading.Thread(target=ctypes.CDLL('libc.so.6').usleep, args=(3_000_000,))\n"
               "t.start(); print('ready', flush=True); t.join()"});
  REQUIRE(child.read_line(10s) == "ready");
  pid_t tid = 0;
  REQUIRE(wait_for(
      [&] {
        for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(child.pid()) + "/task")) {
          const pid_t t = static_cast<pid_t>(std::stol(e.path().filename().string()));
          const auto s = read_blocked_state(child.pid(), t);
          if (t != child.pid() && s && s->nr == kClockNanosleep) tid = t;
        }
        return tid != 0;
      },
      10s));
  const auto snap = snapshot_blocked_thread(child.pid(), tid);
  REQUIRE(snap.has_value());
  NativeUnwinder unwinder({.use_debug_files = false});
  const auto frames = unwinder.unwind_frames(child.pid(), *snap);
  show_frames("thread", frames);
  check_ctypes_usleep(frames, kDebianPython);
  // Thread stacks end in glibc's clone3, which marks itself outermost. Its
  // name and start_thread's are local symbols: known only with libc6-dbg.
  REQUIRE(frames.size() >= 2);
  for (const auto* f : {&frames.back().frame, &frames[frames.size() - 2].frame}) {
    CHECK(f->module.ends_with("/libc.so.6"));
  }
  const std::string& last = frames.back().frame.symbol;
  CHECK((last.empty() || last.find("clone") != std::string::npos));
}

TEST_CASE("live: on CPU inside the vDSO (clock_gettime)") {
  if (!have_root_or_skip("live unwind in the vDSO")) return;
  Child child({kDebianPython, "-c",
               "import time\nprint('ready', flush=True)\nwhile True: time.clock_gettime(time.CLOCK_MONOTONIC)"});
  REQUIRE(child.read_line(10s) == "ready");
  NativeUnwinder unwinder({.use_debug_files = false});
  // Samples land in the vDSO a fraction of the time.
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto snap = ptrace_snapshot(child.pid());
    REQUIRE(snap.has_value());
    const auto frames = unwinder.unwind_frames(child.pid(), *snap);
    if (frames.empty() || frames[0].frame.module != "[vdso]") continue;
    show_frames("vdso", frames);
    INFO(format_frames(frames));
    CHECK(frames[0].frame.offset < 0x10000);  // within the image, not absolute
    CHECK(find_frame(
              frames, [](const std::string& s) { return s == "clock_gettime"; }, "libc.so.6") > 0);
    CHECK(find_frame(frames, [](const std::string& s) { return s == "_PyEval_EvalFrameDefault"; }) > 0);
    return;
  }
  MESSAGE("no sample landed in the vDSO; nothing checked");
}
