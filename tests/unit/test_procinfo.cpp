// procinfo: Python version from paths, fake /proc trees (service names: test_service_name.cpp).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "loopstall/limits.hpp"
#include "loopstall/procinfo.hpp"
#include "loopstall/service_name.hpp"
#include "test_util.hpp"

using namespace loopstall;
using loopstall::test::TempDir;
using namespace std::string_literals;

namespace {

const std::string kHex64 = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";
const std::string kHex12 = kHex64.substr(0, 12);

}  // namespace

TEST_CASE("python_version_from_path") {
  CHECK(python_version_from_path("/usr/bin/python3.11") == "3.11");
  CHECK(python_version_from_path("/usr/local/bin/python3.8") == "3.8");
  CHECK(python_version_from_path("python3.10") == "3.10");
  CHECK(python_version_from_path("/root/.pyenv/versions/3.8.18/lib/libpython3.8.so.1.0") == "3.8");
  CHECK(python_version_from_path("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0") == "3.11");
  CHECK(python_version_from_path("/usr/lib/libpython3.12.so") == "3.12");
  // Debug ("d") and free-threaded ("t", 3.13+) builds: the version is the
  // language version, the ABI flags are dropped (schema: ^3\.[0-9]+$).
  CHECK(python_version_from_path("/usr/lib/libpython3.12d.so") == "3.12");
  CHECK(python_version_from_path("/usr/bin/python3.11d") == "3.11");
  CHECK(python_version_from_path("/usr/bin/python3.13t") == "3.13");
  CHECK(python_version_from_path("/usr/lib/libpython3.13t.so.1.0") == "3.13");
  // No minor version in the name: unknown.
  CHECK_FALSE(python_version_from_path("/usr/bin/python3").has_value());
  CHECK_FALSE(python_version_from_path("/usr/bin/python").has_value());
  CHECK_FALSE(python_version_from_path("/opt/python3.11/bin/python").has_value());
  // Not an interpreter or libpython.
  CHECK_FALSE(python_version_from_path("/usr/bin/python3.11-config").has_value());
  CHECK_FALSE(
      python_version_from_path("/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so").has_value());
  CHECK_FALSE(python_version_from_path("/usr/bin/mypython3.11").has_value());
  CHECK_FALSE(python_version_from_path("/usr/bin/python2.7").has_value());
  CHECK_FALSE(python_version_from_path("").has_value());
}

namespace {

// /proc/PID/{maps,exe,comm,cgroup} under a temporary root.
struct FakeProc {
  TempDir root;

  void add(std::uint32_t pid, const std::string& exe, const std::string& maps, const std::string& comm,
           const std::string& cgroup) {
    const std::string dir = std::to_string(pid);
    root.write(dir + "/maps", maps);
    if (!comm.empty()) root.write(dir + "/comm", comm);
    if (!cgroup.empty()) root.write(dir + "/cgroup", cgroup);
    if (!exe.empty()) {
      // Dangling on purpose: readlink is all inspect_process needs.
      REQUIRE(symlink(exe.c_str(), (root.path() / dir / "exe").c_str()) == 0);
    }
  }
  std::optional<ProcInfo> inspect(std::uint32_t pid) const { return inspect_process(pid, root.path().string()); }
};

const char* kGeventMaps =
    "55d0c0a00000-55d0c0a6c000 r--p 00000000 08:01 1234                       /usr/bin/python3.11\n"
    "55d0c0a6c000-55d0c0d31000 r-xp 0006c000 08:01 1234                       /usr/bin/python3.11\n"
    "55d0c2a3e000-55d0c2b5f000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f1c2b000000-7f1c2b050000 r-xp 00000000 08:01 9999                       "
    "/srv/app/venv/lib/python3.11/site-packages/gevent/libev/corecext.cpython-311-x86_64-linux-gnu.so\n"
    "7f1c2c000000-7f1c2c021000 r-xp 00000000 08:01 4242                       /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

}  // namespace

TEST_CASE("inspect_process: fake /proc trees") {
  FakeProc fp;

  SUBCASE("gevent on a statically linked python3.11 under systemd") {
    fp.add(1000, "/usr/bin/python3.11", kGeventMaps, "gunicorn\n", "0::/system.slice/gunicorn.service\n");
    const auto p = fp.inspect(1000);
    REQUIRE(p.has_value());
    CHECK(p->pid == 1000);
    CHECK(p->python);
    CHECK(p->native_loop == LoopKind::Gevent);
    CHECK(p->python_version == "3.11");
    CHECK(p->exe == "/usr/bin/python3.11");
    CHECK(p->comm == "gunicorn");
    CHECK(p->unit == "gunicorn.service");
  }

  SUBCASE("embedded Python found through libpython, gevent with the system libev") {
    const std::string maps =
        "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/uwsgi\n"
        "7f0000000000-7f0000300000 r-xp 00000000 08:02 1   /root/.pyenv/versions/3.8.18/lib/libpython3.8.so.1.0\n"
        "7f0000400000-7f0000410000 r-xp 00000000 08:02 2   /usr/lib/x86_64-linux-gnu/libev.so.4.0.0\n";
    fp.add(1001, "/usr/bin/uwsgi", maps, "uwsgi\n", "0::/system.slice/docker-" + kHex64 + ".scope\n");
    const auto p = fp.inspect(1001);
    REQUIRE(p.has_value());
    CHECK(p->python);
    CHECK(p->native_loop == LoopKind::Gevent);
    CHECK(p->python_version == "3.8");
    CHECK(p->exe == "/usr/bin/uwsgi");
    CHECK(p->unit == "");  // a container is not a unit
    CHECK(container_id_from_cgroup(p->cgroup) == kHex64);
  }

  SUBCASE("asyncio: Python without gevent") {
    const std::string maps =
        "55d0c0a00000-55d0c0a6c000 r-xp 00000000 08:01 1234 /usr/local/bin/python3.12\n"
        "7f1c2b000000-7f1c2b050000 r-xp 00000000 08:01 9999 "
        "/usr/local/lib/python3.12/lib-dynload/_asyncio.cpython-312-x86_64-linux-gnu.so\n";
    fp.add(1002, "/usr/local/bin/python3.12", maps, "python3\n", "0::/user.slice/user-1000.slice/session-2.scope\n");
    const auto p = fp.inspect(1002);
    REQUIRE(p.has_value());
    CHECK(p->python);
    CHECK(p->native_loop == LoopKind::Python);  // asyncio is pure Python: its stack tells (frameworks)
    CHECK(p->python_version == "3.12");
    CHECK(p->comm == "python3");
    CHECK(p->unit == "");
  }

  SUBCASE("exe without a minor version and no libpython: Python, version unknown") {
    fp.add(1003, "/usr/bin/python3", "00400000-00452000 r-xp 00000000 08:02 1 /usr/bin/python3\n", "python3\n", "");
    const auto p = fp.inspect(1003);
    REQUIRE(p.has_value());
    CHECK(p->python);
    CHECK_FALSE(p->python_version.has_value());
    CHECK(p->unit == "");  // no cgroup file
  }

  SUBCASE("free-threaded build") {
    fp.add(1004, "/usr/bin/python3.13t", "00400000-00452000 r-xp 00000000 08:02 1 /usr/bin/python3.13t\n", "py\n", "");
    const auto p = fp.inspect(1004);
    REQUIRE(p.has_value());
    CHECK(p->python);
    CHECK(p->python_version == "3.13");
  }

  SUBCASE("a non-Python process, even with libev or a gevent-named directory") {
    const std::string maps =
        "55d0c0a00000-55d0c0a6c000 r-xp 00000000 08:01 1234 /usr/sbin/nginx\n"
        "7f0000400000-7f0000410000 r-xp 00000000 08:02 2    /usr/lib/x86_64-linux-gnu/libev.so.4.0.0\n"
        "7f0000500000-7f0000510000 r--p 00000000 08:02 3    /srv/gevent/data.bin\n";
    fp.add(1005, "/usr/sbin/nginx", maps, "nginx\n", "0::/system.slice/nginx.service\n");
    const auto p = fp.inspect(1005);
    REQUIRE(p.has_value());
    CHECK_FALSE(p->python);
    CHECK(p->native_loop == LoopKind::Epoll);
    CHECK_FALSE(p->python_version.has_value());
    CHECK(p->exe == "/usr/sbin/nginx");
    CHECK(p->comm == "nginx");
    CHECK(p->unit == "nginx.service");
  }

  SUBCASE("a missing pid") {
    fp.add(1006, "/usr/bin/python3.11", kGeventMaps, "x\n", "");
    CHECK_FALSE(fp.inspect(1007).has_value());
    CHECK_FALSE(inspect_process(1006, (fp.root.path() / "nonexistent").string()).has_value());
  }

  SUBCASE("exe unreadable (other user): decided by maps, exe their first file") {
    fp.add(1008, "",
           "55d0c0a00000-55d0c0a01000 r--p 00000000 08:02 7 /opt/app/bin/worker\n"
           "7f0000000000-7f0000300000 r-xp 00000000 08:02 1 /usr/lib/libpython3.9.so.1.0\n",
           "w\n", "");
    const auto p = fp.inspect(1008);
    REQUIRE(p.has_value());
    CHECK(p->exe == "/opt/app/bin/worker");
    CHECK(p->limited);
    CHECK(p->python);
    CHECK(p->python_version == "3.9");
    CHECK(p->libpython == "/usr/lib/libpython3.9.so.1.0");
  }

  SUBCASE("empty maps") {
    fp.add(1009, "/usr/sbin/sshd", "", "", "");
    const auto p = fp.inspect(1009);
    REQUIRE(p.has_value());
    CHECK_FALSE(p->python);
    CHECK(p->comm == "");
  }

  SUBCASE("garbage maps lines") {
    std::string maps =
        "\n\n   \n"
        "xyz\n"
        "/\n"
        "////\n"
        "libpython3.11.so.1.0 without a slash\n"
        "7f-7f r-xp 0 0 0 /x/\n"
        "\xff\xfe\x01 /\xff/\xfe\n"
        "7f0000000000-7f0000300000 r-xp 00000000 08:02 1 /usr/lib/libpython3.10.so.1.0\n" +
        std::string(70000, 'a') + "/" + std::string(5000, 'b') + "\n" + std::string("\0\0/\0", 4) + "\n" +
        "unterminated /usr/lib/libpython3.7.so";  // no trailing newline
    fp.add(1010, "/usr/bin/app", maps, std::string("a\xff\n\n", 4), "");
    const auto p = fp.inspect(1010);
    REQUIRE(p.has_value());
    CHECK(p->python);
    CHECK(p->python_version == "3.10");  // the first libpython mapping
    CHECK(p->native_loop == LoopKind::Python);
    CHECK(p->comm == "a\xff");
  }
}

TEST_CASE("inspect_process: only code a process runs classifies it") {
  FakeProc fp;

  SUBCASE("loopstalld maps interpreters and gevent's modules read-only for their symbols") {
    const std::string maps =
        "55d0c0a00000-55d0c0a6c000 r-xp 00000000 08:01 77 /usr/sbin/loopstalld\n"
        "7f0000000000-7f0000300000 r--p 00000000 08:02 1  /usr/bin/python3.11\n"
        "7f0000300000-7f0000600000 r--p 00000000 08:02 2  /root/.pyenv/versions/3.8.18/lib/libpython3.8.so.1.0\n"
        "7f0000600000-7f0000610000 r--p 00000000 08:02 3  "
        "/usr/lib/python3/dist-packages/gevent/libev/corecext.cpython-311-x86_64-linux-gnu.so\n"
        "7f0000700000-7f0000710000 r--p 00000000 08:02 4  /usr/lib/x86_64-linux-gnu/libev.so.4.0.0\n";
    fp.add(2000, "/usr/sbin/loopstalld", maps, "loopstalld\n", "0::/system.slice/loopstalld.service\n");
    const auto p = fp.inspect(2000);
    REQUIRE(p.has_value());
    CHECK_FALSE(p->python);
    CHECK(p->libpython == "");
    CHECK_FALSE(p->python_version.has_value());
    CHECK(p->native_loop == LoopKind::Epoll);
    CHECK(p->loopstall);
    CHECK(loop_kind(*p) == LoopKind::Epoll);
  }

  SUBCASE("another reader of libpython (a debugger) is not Python either, nor loopstall") {
    fp.add(2001, "/usr/bin/gdb",
           "00400000-00452000 r-xp 00000000 08:02 1 /usr/bin/gdb\n"
           "7f0000000000-7f0000300000 r--p 00000000 08:02 2 /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n",
           "gdb\n", "");
    const auto p = fp.inspect(2001);
    REQUIRE(p.has_value());
    CHECK_FALSE(p->python);
    CHECK_FALSE(p->loopstall);
  }

  SUBCASE("an asyncio process that reads a gevent module's file is not gevent") {
    fp.add(2002, "/usr/bin/python3.11",
           "00400000-00452000 r-xp 00000000 08:02 1 /usr/bin/python3.11\n"
           "7f0000600000-7f0000610000 r--p 00000000 08:02 3 /srv/gevent/corecext.so\n"
           "7f0000700000-7f0000710000 rw-p 00000000 08:02 4 /usr/lib/x86_64-linux-gnu/libev.so.4.0.0\n",
           "py\n", "");
    const auto p = fp.inspect(2002);
    REQUIRE(p.has_value());
    CHECK(p->python);
    CHECK(p->native_loop == LoopKind::Python);
    CHECK_FALSE(p->loopstall);
  }

  SUBCASE("the capture CLI, wherever it is installed, and a deleted binary") {
    fp.add(2003, "/opt/ls/bin/loopstall", "00400000-00452000 r-xp 00000000 08:02 1 /opt/ls/bin/loopstall\n", "l\n", "");
    fp.add(2004, "/usr/sbin/loopstalld (deleted)", "", "l\n", "");
    fp.add(2005, "/usr/sbin/loopstallx", "", "l\n", "");
    CHECK(fp.inspect(2003)->loopstall);
    CHECK(fp.inspect(2004)->loopstall);
    CHECK_FALSE(fp.inspect(2005)->loopstall);
  }

  SUBCASE("the same file as this process's executable, under any name") {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    REQUIRE_FALSE(ec);
    fp.add(2006, self.string(), "", "renamed\n", "");
    CHECK(fp.inspect(2006)->loopstall);
  }
}

TEST_CASE("inspect_process: this very process is loopstall's") {
  const auto p = inspect_process(static_cast<std::uint32_t>(getpid()));
  REQUIRE(p.has_value());
  CHECK(p->loopstall);
}

TEST_CASE("inspect_process: framework modules") {
  FakeProc fp;
  const std::string py = "00400000-00452000 r-xp 00000000 08:02 1 /usr/bin/python3.11\n";
  const std::string uvloop =
      "7f0000100000-7f0000200000 r-xp 00000000 08:02 5 "
      "/usr/lib/python3/dist-packages/uvloop/loop.cpython-311-x86_64-linux-gnu.so\n";
  const std::string greenlet =
      "7f0000300000-7f0000310000 r-xp 00000000 08:02 6 "
      "/usr/lib/python3/dist-packages/greenlet/_greenlet.cpython-311-x86_64-linux-gnu.so\n";
  const std::string gevent =
      "7f0000400000-7f0000410000 r-xp 00000000 08:02 7 "
      "/usr/lib/python3/dist-packages/gevent/_gevent_cgreenlet.cpython-311-x86_64-linux-gnu.so\n";
  auto kind = [&](std::uint32_t pid, const std::string& maps) {
    fp.add(pid, "/usr/bin/python3.11", maps, "py\n", "");
    return fp.inspect(pid)->native_loop;
  };
  CHECK(kind(3000, py + uvloop) == LoopKind::Uvloop);
  CHECK(kind(3001, py + greenlet) == LoopKind::Eventlet);  // a hint: the stack decides
  CHECK(kind(3002, py + greenlet + gevent) == LoopKind::Gevent);
  CHECK(kind(3003, py + gevent + greenlet) == LoopKind::Gevent);
  CHECK(kind(3004, py + uvloop + gevent) == LoopKind::Gevent);  // table order, not map order
  CHECK(kind(3005, py) == LoopKind::Python);
}

TEST_CASE("inspect_process: a huge cmdline is read up to kMaxCmdlineBytes") {
  FakeProc fp;
  fp.add(1100, "/usr/bin/python3.11", kGeventMaps, "celery\n", "");
  // Any user can start a process with megabytes of arguments.
  std::string argv = "celery\0worker\0"s + std::string(1 << 20, 'a') + "\0"s;
  fp.root.write("1100/cmdline", argv);
  const auto p = fp.inspect(1100);
  REQUIRE(p.has_value());
  CHECK(p->cmdline.size() == kMaxCmdlineBytes);
  CHECK(p->cmdline.rfind("celery worker aaa", 0) == 0);
}

TEST_CASE("python_version_from_path: long hostile paths are linear work") {
  // Paths are chosen by whoever names the file; the old std::regex recursed
  // per character.
  std::string path;
  for (int i = 0; i < 20000; ++i) path += "/python3.1";
  CHECK(python_version_from_path(path) == "3.1");
  CHECK_FALSE(python_version_from_path(path + "x/").has_value());
  CHECK_FALSE(python_version_from_path("/libpython3." + std::string(1 << 20, '1') + ".so.x").has_value());
}

TEST_CASE("inspect_process: maps not readable (another user's process, no CAP_SYS_PTRACE)") {
  FakeProc fp;
  fp.root.write("2000/comm", "python3.11\n");
  fp.root.write("2000/cmdline", std::string("/usr/bin/python3.11\0-m\0gunicorn\0-k\0gevent\0app:app\0", 50));
  fp.root.write("2001/comm", "worker\n");
  fp.root.write("2001/cmdline", std::string("/usr/local/bin/python3.12\0serve.py\0", 35));
  fp.root.write("2002/comm", "nginx\n");
  fp.root.write("2002/cmdline", std::string("nginx: worker process\0", 22));
  const auto gevent = fp.inspect(2000), asyncio = fp.inspect(2001), other = fp.inspect(2002);
  REQUIRE(gevent.has_value());
  REQUIRE(asyncio.has_value());
  REQUIRE(other.has_value());
  CHECK(gevent->limited);
  CHECK(gevent->python);
  CHECK(gevent->native_loop == LoopKind::Gevent);
  CHECK(gevent->python_version == "3.11");
  CHECK(gevent->libpython.empty());
  CHECK(asyncio->python);
  CHECK(asyncio->native_loop == LoopKind::Python);
  CHECK(asyncio->python_version == "3.12");
  CHECK_FALSE(other->python);
  CHECK(other->native_loop == LoopKind::Epoll);
  CHECK_FALSE(fp.inspect(2003).has_value());  // gone
}

TEST_CASE("inspect_process: maps readable, exe not (CAP_PERFMON without CAP_SYS_PTRACE)") {
  // Debian's python3.11 links libpython statically: without the exe link
  // only the first mapped file says it is Python.
  FakeProc fp;
  fp.add(2100, "", kGeventMaps, "python3.11\n", "");
  fp.add(2101, "", "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]\n", "nginx\n", "");
  const auto py = fp.inspect(2100), other = fp.inspect(2101);
  REQUIRE(py.has_value());
  REQUIRE(other.has_value());
  CHECK(py->limited);
  CHECK(py->exe == "/usr/bin/python3.11");
  CHECK(py->python);
  CHECK(py->native_loop == LoopKind::Gevent);
  CHECK(py->python_version == "3.11");
  CHECK(other->exe.empty());
  CHECK_FALSE(other->python);
  const auto readable = [&] {
    fp.add(2102, "/usr/bin/python3.11", kGeventMaps, "python3.11\n", "");
    return fp.inspect(2102);
  }();
  REQUIRE(readable.has_value());
  CHECK_FALSE(readable->limited);
}

// --- PID namespaces: the NSpid line of /proc/PID/task/TID/status ---------------

namespace {

// A status file as the kernel writes it (6.x), with the given NSpid line ("" for none).
std::string status_text(const std::string& nspid_line) {
  return "Name:\tpython3.11\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t4241\n"
         "TracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t0 \nNStgid:\t4242\t1\n" +
         nspid_line + "NSpgid:\t4241\t0\nNSsid:\t4241\t0\nThreads:\t2\n";
}

}  // namespace

TEST_CASE("parse_nspid") {
  using V = std::vector<std::uint32_t>;
  CHECK(parse_nspid(status_text("NSpid:\t4242\n")) == V{4242});
  // Outermost (ours) first, innermost (the process's own) last; nested containers too.
  CHECK(parse_nspid(status_text("NSpid:\t4242\t1\n")) == V{4242, 1});
  CHECK(parse_nspid(status_text("NSpid:\t4243\t57\t2\n")) == V{4243, 57, 2});
  CHECK(parse_nspid("NSpid:\t4294967295\t1") == V{4294967295U, 1});  // no trailing newline
  // NStgid, NSpgid and NSsid are other lines: only NSpid counts.
  CHECK(parse_nspid("NStgid:\t9\t1\nNSpgid:\t9\t0\n").empty());
  CHECK(parse_nspid(status_text("")).empty());
  // Garbage: never a half-read id.
  CHECK(parse_nspid("").empty());
  CHECK(parse_nspid("NSpid:").empty());
  CHECK(parse_nspid("NSpid:\t\n").empty());
  CHECK(parse_nspid("NSpid:\t12x\t1\n").empty());
  CHECK(parse_nspid("NSpid:\t-1\n").empty());
  CHECK(parse_nspid("NSpid:\t0\t1\n").empty());
  CHECK(parse_nspid("NSpid:\t4294967296\n").empty());  // overflows 32 bits
  CHECK(parse_nspid("NSpid:\t99999999999999999999999\n").empty());
  CHECK(parse_nspid(std::string("NSpid:\t7\0\t1\n", 11)).empty());
  CHECK(parse_nspid(" NSpid:\t7\n").empty());  // not at the start of a line
}

TEST_CASE("innermost_tid / innermost_tids / in_child_pid_namespace: fake /proc trees") {
  TempDir root;
  const std::string proc = root.path().string();
  // A container's python (our 4242, its 1) with a second thread (our 4250, its 9).
  root.write("4242/task/4242/status", status_text("NSpid:\t4242\t1\n"));
  root.write("4242/task/4250/status", status_text("NSpid:\t4250\t9\n"));
  // A process of ours (one namespace) ...
  root.write("5000/task/5000/status", status_text("NSpid:\t5000\n"));
  // ... one on a kernel without NSpid ...
  root.write("6000/task/6000/status", status_text(""));
  // ... and entries that are not (or no longer) threads.
  root.write("4242/task/4260/status", "");  // exited while read
  root.write("4242/task/notatid/status", status_text("NSpid:\t1\t1\n"));
  root.write("4242/task/4270/status", status_text("NSpid:\t999\t3\n"));  // another thread's line: taken as ours

  CHECK(innermost_tid(4242, 4242, proc) == 1U);
  CHECK(innermost_tid(4242, 4250, proc) == 9U);
  CHECK(innermost_tid(5000, 5000, proc) == 5000U);
  CHECK(innermost_tid(6000, 6000, proc) == 6000U);
  CHECK(innermost_tid(4242, 4270, proc) == 4270U);
  CHECK_FALSE(innermost_tid(4242, 4260, proc).has_value());
  CHECK_FALSE(innermost_tid(4242, 4243, proc).has_value());  // gone
  CHECK_FALSE(innermost_tid(7000, 7000, proc).has_value());

  CHECK(in_child_pid_namespace(4242, proc));
  CHECK_FALSE(in_child_pid_namespace(5000, proc));
  CHECK_FALSE(in_child_pid_namespace(6000, proc));
  CHECK_FALSE(in_child_pid_namespace(7000, proc));

  const std::map<std::uint32_t, std::uint32_t> want{{4242, 1}, {4250, 9}, {4270, 4270}};
  CHECK(innermost_tids(4242, proc) == want);
  CHECK(innermost_tids(5000, proc) == std::map<std::uint32_t, std::uint32_t>{{5000, 5000}});
  CHECK(innermost_tids(7000, proc).empty());
}

TEST_CASE("innermost_tids: this process, in our own namespace") {
  const auto self = static_cast<std::uint32_t>(getpid());
  const auto tids = innermost_tids(self);
  REQUIRE(tids.count(self) == 1);
  CHECK(tids.at(self) == self);
  CHECK_FALSE(in_child_pid_namespace(self));
}

TEST_CASE("target_file_paths") {
  using V = std::vector<std::string>;
  CHECK(target_file_paths(42, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x7f0000001000, 0x7f0000002000) ==
        V{"/proc/42/map_files/7f0000001000-7f0000002000", "/proc/42/root/usr/lib/x86_64-linux-gnu/libc.so.6"});
  // No mapping known (an exe from /proc/PID/exe): the process's root only.
  CHECK(target_file_paths(42, "/usr/bin/python3.11") == V{"/proc/42/root/usr/bin/python3.11"});
  // Replaced on disk: map_files still has it; the path names whatever is there now.
  CHECK(target_file_paths(7, "/srv/app/python3.11 (deleted)", 0x400000, 0x401000, "/fake") ==
        V{"/fake/7/map_files/400000-401000", "/fake/7/root/srv/app/python3.11"});
  // Not a path: only map_files, if the mapping is known.
  CHECK(target_file_paths(7, "[vdso]", 0x1000, 0x2000) == V{"/proc/7/map_files/1000-2000"});
  CHECK(target_file_paths(7, "").empty());
  CHECK(target_file_paths(7, "relative/lib.so").empty());
  CHECK(target_file_paths(7, "/x", 0x2000, 0x1000) == V{"/proc/7/root/x"});  // an empty range is no mapping
}

TEST_CASE("classify_process: judges the texts alone, as inspect_process does after reading them") {
  ProcTexts t;
  t.exe = "/usr/bin/python3.11";
  t.maps = kGeventMaps;
  t.comm = "python3.11\n";
  t.cmdline = "python3.11 -m gunicorn -k gevent app:app";
  t.cgroup = "0::/system.slice/web.service\n";
  const auto p = classify_process(2200, t);
  REQUIRE(p.has_value());
  CHECK(p->pid == 2200);
  CHECK(p->comm == "python3.11");
  CHECK(p->python);
  CHECK(p->native_loop == LoopKind::Gevent);
  CHECK(p->unit == "web.service");
  CHECK_FALSE(p->limited);
  CHECK_FALSE(p->loopstall);

  t.runs_this_binary = true;  // the reader found the exe is this program's file
  CHECK(classify_process(2200, t)->loopstall);
  t.runs_this_binary = false;
  t.exe = "/opt/loopstall/bin/loopstalld (deleted)";
  CHECK(classify_process(2200, t)->loopstall);

  t.comm.reset();
  t.maps.reset();
  CHECK_FALSE(classify_process(2200, t).has_value());  // gone
}
