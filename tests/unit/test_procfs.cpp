// procfs: the one reader of /proc files, over fake trees and this process.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <string>

#include "loopstall/procfs.hpp"
#include "test_util.hpp"

using namespace loopstall;
using loopstall::test::TempDir;
using namespace std::string_literals;

TEST_CASE("process_ids / task_ids: numeric entries only") {
  TempDir root;
  root.write("1/comm", "init\n");
  root.write("4242/task/4242/comm", "python3.11\n");
  root.write("4242/task/4250/comm", "worker\n");
  root.write("self/comm", "x\n");
  root.write("4x2/comm", "x\n");
  root.write("0/comm", "x\n");
  auto pids = process_ids(root.path().string());
  std::sort(pids.begin(), pids.end());
  CHECK(pids == std::vector<std::uint32_t>{1, 4242});
  auto tids = task_ids(4242, root.path().string());
  std::sort(tids.begin(), tids.end());
  CHECK(tids == std::vector<std::uint32_t>{4242, 4250});
  CHECK(task_ids(7, root.path().string()).empty());
  CHECK(thread_comm(4242, 4250, root.path().string()) == "worker");
  // This process: /proc really lists it.
  const auto self = static_cast<std::uint32_t>(getpid());
  const auto real = process_ids();
  CHECK(std::find(real.begin(), real.end(), self) != real.end());
}

TEST_CASE("read_file_prefix: the whole file, or its first max bytes") {
  TempDir root;
  const std::string big(100000, 'x');
  root.write("f", big);
  const std::string f = (root.path() / "f").string();
  CHECK(read_file_prefix(f, 1 << 20) == big);
  CHECK(read_file_prefix(f, 10) == std::string(10, 'x'));
  CHECK(read_file_prefix(f, 0) == "");
  CHECK_FALSE(read_file_prefix((root.path() / "missing").string(), 10).has_value());
}

TEST_CASE("read_maps: cut after the last whole line at kMaxMapsBytes") {
  TempDir root;
  const std::string line = "7f0000000000-7f0000001000 r-xp 00000000 fe:00 42 /" + std::string(200, 'a') + "\n";
  std::string maps;
  while (maps.size() <= kMaxMapsBytes) maps += line;
  root.write("9/maps", maps);
  const auto got = read_maps(9, root.path().string());
  REQUIRE(got.has_value());
  CHECK(got->size() <= kMaxMapsBytes);
  CHECK(got->size() % line.size() == 0);
  CHECK(got->size() + line.size() > kMaxMapsBytes);
  CHECK_FALSE(read_maps(10, root.path().string()).has_value());
  CHECK(read_maps(static_cast<std::uint32_t>(getpid()))->find("[stack]") != std::string::npos);
}

TEST_CASE("stat fields: comm may hold spaces and parentheses") {
  const std::string stat = "1234 (a) b (c) S 77 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 9999 123456789";
  CHECK(stat_field(stat, 3) == "S");
  CHECK(stat_field(stat, 4) == "77");
  CHECK(stat_field(stat, 22) == "9999");
  CHECK(stat_field(stat, 23) == "123456789");
  CHECK_FALSE(stat_field(stat, 24).has_value());
  CHECK_FALSE(stat_field(stat, 2).has_value());  // comm is not counted by fields
  CHECK(parse_stat_ppid(stat) == 77U);
  CHECK_FALSE(parse_stat_ppid("1234 (x)").has_value());
  CHECK_FALSE(parse_stat_ppid("no paren S 1").has_value());
  TempDir root;
  root.write("5/stat", "5 (gunicorn: worker) S 4 5 5\n");
  root.write("4/stat", "4 (gunicorn) S 1 4 4\n");
  CHECK(parent_pid(5, root.path().string()) == 4U);
  CHECK_FALSE(parent_pid(4, root.path().string()).has_value());  // init's child
}

TEST_CASE("exec mapped KiB: VmExe + VmLib of status, this process's too") {
  const std::string status = "Name:\tpython3.11\nVmSize:\t  41720 kB\nVmExe:\t    2764 kB\nVmLib:\t    7508 kB\n";
  CHECK(parse_exec_mapped_kb(status) == 10272U);
  CHECK_FALSE(parse_exec_mapped_kb("Name:\tkthreadd\n").has_value());  // kernel threads have no Vm lines
  CHECK_FALSE(parse_exec_mapped_kb("VmExe:\t 12 kB\nVmLib:\t x kB\n").has_value());
  CHECK_FALSE(parse_exec_mapped_kb("VmExe:\t 12 MB\nVmLib:\t 3 kB\n").has_value());
  TempDir root;
  root.write("7/status", status);
  CHECK(read_exec_mapped_kb(7, root.path().string()) == 10272U);
  CHECK_FALSE(read_exec_mapped_kb(8, root.path().string()).has_value());
  const auto self = read_exec_mapped_kb(static_cast<std::uint32_t>(getpid()));
  REQUIRE(self.has_value());
  CHECK(*self > 0);
}

TEST_CASE("parse_syscall_file: in a syscall, blocked elsewhere, running, garbage") {
  const auto in = parse_syscall_file("232 0x3 0x7ffd0000 0x40 0xffffffff 0x0 0x0 0x7ffd1000 0x7f0000001234\n");
  REQUIRE(in.has_value());
  CHECK(in->nr == 232);
  CHECK(in->args[0] == 3);
  CHECK(in->args[3] == 0xffffffffULL);
  CHECK(in->sp == 0x7ffd1000);
  CHECK(in->pc == 0x7f0000001234);
  const auto out = parse_syscall_file("-1 0x7ffd2000 0x401000\n");
  REQUIRE(out.has_value());
  CHECK(out->nr == -1);
  CHECK(out->sp == 0x7ffd2000);
  CHECK(out->pc == 0x401000);
  CHECK_FALSE(parse_syscall_file("running\n").has_value());
  CHECK_FALSE(parse_syscall_file("0 0x0 0x0 0x0 0x0 0x0 0x0 0x0 0x0\n").has_value());  // a kernel thread
  CHECK_FALSE(parse_syscall_file("232 0x3\n").has_value());                            // cut short
  CHECK_FALSE(parse_syscall_file("-5 0x1 0x2").has_value());
  CHECK_FALSE(parse_syscall_file("").has_value());
  CHECK(parse_syscall_nr("232 0x3") == 232);
}

TEST_CASE("deleted files and Python versions from paths") {
  CHECK(is_deleted("/usr/bin/python3.11 (deleted)"));
  CHECK_FALSE(is_deleted("/usr/bin/python3.11"));
  CHECK_FALSE(is_deleted(" (deleted)"));  // no path before the mark
  CHECK(strip_deleted("/x/lib.so (deleted)") == "/x/lib.so");
  CHECK(strip_deleted("/x/lib.so") == "/x/lib.so");
  using V = std::pair<int, int>;
  CHECK(python_version_numbers("/srv/app/libpython3.12.so.1.0 (deleted)") == V{3, 12});
  CHECK(python_version_numbers("/usr/bin/python3.13t") == V{3, 13});
  CHECK_FALSE(python_version_numbers("/usr/bin/python3.-1").has_value());
  CHECK_FALSE(python_version_numbers("/usr/bin/python3.99999999999").has_value());
  CHECK(python_version_from_path("/usr/bin/python3.11") == "3.11");
}

TEST_CASE("read_cmdline: arguments joined by spaces, bounded") {
  TempDir root;
  root.write("3/cmdline", "gunicorn\0app:wsgi\0-w\0004\0"s);
  CHECK(read_cmdline(3, root.path().string()) == "gunicorn app:wsgi -w 4");
  CHECK_FALSE(read_cmdline(8, root.path().string()).has_value());
  CHECK(join_cmdline("a\0\0b\0\0"s) == "a  b");  // empty arguments stay; the trailing NULs go
  CHECK(join_cmdline("") == "");
}
