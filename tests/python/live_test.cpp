// Live interpreters: start live_target.py under every CPython found (pyenv 3.8
// .. 3.13, Debian's python3.11) and read each parked thread's stack from
// outside. Needs root (process_vm_readv on a non-child is fine, but map_files
// and other users' processes are not); skipped without it unless CI=true.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "live_support.hpp"
#include "loopstall/procfs.hpp"
#include "loopstall/python/debug_offsets.hpp"
#include "loopstall/python/stack_reader.hpp"
#include "loopstall/python/thread_ids.hpp"

using namespace loopstall::python;
using namespace loopstall::python::test;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kScript = std::string(LOOPSTALL_PY_TEST_DIR) + "/live_target.py";

struct Expect {
  std::string function;
  int line;
};

std::string describe(const std::vector<loopstall::PyFrame>& frames) {
  std::string s;
  for (const auto& f : frames) {
    s += "\n  " + f.function + " " + f.file + ":" + (f.line ? std::to_string(*f.line) : "?");
  }
  return s;
}

bool matches(const std::vector<loopstall::PyFrame>& frames, const std::vector<Expect>& want) {
  if (frames.size() < want.size()) return false;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (frames[i].function != want[i].function || frames[i].line != want[i].line) return false;
    if (std::filesystem::path(frames[i].file).filename() != "live_target.py") return false;
  }
  return true;
}

// The thread reports just before blocking: poll until the stack settles in the call.
void check_stack(PyProcess& py, std::uint32_t tid, const std::vector<Expect>& want) {
  std::vector<loopstall::PyFrame> frames;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  do {
    frames = py.stack(tid);
    if (matches(frames, want)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (Clock::now() < deadline);
  INFO("tid ", tid, " stack:", describe(frames));
  CHECK(py.thread_state(tid).has_value());
  CHECK(matches(frames, want));
}

std::optional<PyProcess> attach_with_retry(pid_t pid) {
  for (int i = 0; i < 50; ++i) {
    if (auto py = PyProcess::attach(pid)) return py;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("live: threads parked in known call chains, every interpreter") {
  if (!may_run_live()) return;
  const auto m = markers(kScript);
  REQUIRE(m.count("sleep"));
  const auto interps = interpreters();
  if (interps.empty()) MESSAGE("no CPython 3.8 .. 3.13 found");
  for (const auto& interp : interps) {
    CAPTURE(interp.path);
    Child child(kScript, interp.path, {});
    const auto tids = child.wait_for({"main", "worker", "ctypes"}, std::chrono::seconds(20));
    REQUIRE(tids.size() == 3);
    CHECK(tids.at("main") == static_cast<std::uint32_t>(child.pid()));
    auto py = attach_with_retry(child.pid());
    REQUIRE(py);
    CHECK(py->version() == "3." + std::to_string(interp.minor));
    CHECK(py->offsets().minor == static_cast<std::uint32_t>(interp.minor));
    // A running interpreter is not shutting down (a wrong _finalizing offset would hide its stalls).
    CHECK_FALSE(py->finalizing());

    const std::string method = interp.minor >= 11 ? "Klass.method" : "method";
    const std::vector<Expect> chain = {
        {"inner_sleep", m.at("sleep")}, {"middle", m.at("middle")}, {"outer", m.at("outer")}};
    std::vector<Expect> main_chain = chain;
    main_chain.insert(main_chain.end(),
                      {{method, m.at("method")}, {"main", m.at("main")}, {"<module>", m.at("module")}});
    check_stack(*py, tids.at("main"), main_chain);
    check_stack(*py, tids.at("worker"), chain);
    // GIL released inside a C call: found by tid, not as the GIL holder.
    check_stack(*py, tids.at("ctypes"),
                {{"c_inner", m.at("usleep")}, {"c_middle", m.at("c_middle")}, {"c_outer", m.at("c_outer")}});
    CHECK(py->stack(tids.at("main")).size() == 6);  // nothing beyond <module>

    if (interp.minor <= 10) {
      // glibc's libthread_db descriptor and the search agree on where struct pthread keeps the tid.
      const loopstall::ProcessMemory mem(child.pid());
      REQUIRE(py->runtime_info().pthread_tid_descriptor != 0);
      const auto by_symbol = pthread_tid_offset_from_descriptor(mem, py->runtime_info().pthread_tid_descriptor);
      const auto by_search =
          pthread_tid_offset_by_search(mem, py->runtime_address(), py->offsets(), child.pid(), live_tids(child.pid()));
      CHECK(by_symbol.has_value());
      CHECK(by_symbol == by_search);
      CHECK(py->pthread_tid_offset() == by_symbol.value_or(kNoField));
    }
    if (interp.minor >= 11) CHECK((py->runtime_info().py_version_hex >> 16) == (0x0300u | interp.minor));
    if (interp.minor == 13) {
      // The runtime's own _Py_DebugOffsets agree with the static table, field for field.
      CHECK(py->uses_debug_offsets());
      const loopstall::ProcessMemory mem(child.pid());
      const auto d = read_debug_offsets(mem, py->runtime_address(), kPy313);
      REQUIRE(d);
      CHECK(*d == kPy313);
    }
  }
}

namespace {

// The process whose parent is ppid (unshare -f's one child), or -1.
pid_t child_of(pid_t ppid) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    long parent = 0;
    if (rest >> state >> parent && parent == ppid) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

}  // namespace

TEST_CASE("live: a process in its own PID namespace (containers), every interpreter") {
  if (!may_run_live()) return;
  if (std::system("unshare --version >/dev/null 2>&1") != 0) {
    MESSAGE("skipping PID namespace case: no unshare (util-linux)");
    return;
  }
  const auto m = markers(kScript);
  for (const auto& interp : interpreters()) {
    CAPTURE(interp.path);
    Child child(kScript, interp.path, {}, {"unshare", "-p", "-f", "--kill-child", "--mount-proc"});
    const auto own = child.wait_for({"main", "worker", "ctypes"}, std::chrono::seconds(20));
    REQUIRE(own.size() == 3);
    const pid_t pid = child_of(child.pid());  // the interpreter, below unshare
    REQUIRE(pid > 0);
    REQUIRE(loopstall::in_child_pid_namespace(static_cast<std::uint32_t>(pid)));
    CHECK(own.at("main") == 1);  // its own pid there
    // Our tids of the threads it reported by its own.
    std::map<std::uint32_t, std::uint32_t> ours;
    for (const auto& [host, inner] : loopstall::innermost_tids(static_cast<std::uint32_t>(pid))) ours[inner] = host;
    for (const auto& [role, tid] : own) REQUIRE(ours.count(tid));
    CHECK(ours.at(own.at("main")) == static_cast<std::uint32_t>(pid));

    auto py = attach_with_retry(pid);
    REQUIRE(py);
    CHECK(py->in_child_pid_namespace());
    // Found by our tids, as BPF and /proc name the threads.
    check_stack(*py, ours.at(own.at("worker")),
                {{"inner_sleep", m.at("sleep")}, {"middle", m.at("middle")}, {"outer", m.at("outer")}});
    check_stack(*py, ours.at(own.at("ctypes")), {{"c_inner", m.at("usleep")}, {"c_middle", m.at("c_middle")}});
    // Settled in its sleep first: it printed its tid from report(), one frame more, just before.
    check_stack(*py, ours.at(own.at("main")),
                {{"inner_sleep", m.at("sleep")}, {"middle", m.at("middle")}, {"outer", m.at("outer")}});
    CHECK(py->stack(ours.at(own.at("main"))).size() == 6);

    if (interp.minor <= 10) {
      // struct pthread holds the process's own tids: the search needs its own pid, not ours.
      const loopstall::ProcessMemory mem(pid);
      const auto by_symbol = pthread_tid_offset_from_descriptor(mem, py->runtime_info().pthread_tid_descriptor);
      const auto live = live_tids(pid);
      CHECK(live.count(1) == 1);
      CHECK(pthread_tid_offset_by_search(mem, py->runtime_address(), py->offsets(), 1, live) == by_symbol);
      CHECK_FALSE(pthread_tid_offset_by_search(mem, py->runtime_address(), py->offsets(), pid, live).has_value());
    }
  }
}

TEST_CASE("live: gevent, the running greenlet's frames (Debian python3.11)") {
  if (!may_run_live()) return;
  if (!std::filesystem::exists("/usr/bin/python3.11") ||
      std::system("/usr/bin/python3.11 -c 'import gevent' >/dev/null 2>&1") != 0) {
    MESSAGE("skipping gevent case: /usr/bin/python3.11 with gevent not found");
    return;
  }
  const auto m = markers(kScript);
  Child child(kScript, "/usr/bin/python3.11", {"gevent"});
  const auto tids = child.wait_for({"greenlet"}, std::chrono::seconds(20));
  REQUIRE(tids.size() == 1);
  CHECK(tids.at("greenlet") == static_cast<std::uint32_t>(child.pid()));  // greenlets run on the main thread
  auto py = attach_with_retry(child.pid());
  REQUIRE(py);
  check_stack(*py, tids.at("greenlet"),
              {{"inner_sleep", m.at("sleep")},
               {"middle", m.at("middle")},
               {"outer", m.at("outer")},
               {"greenlet_body", m.at("greenlet_body")}});
}

TEST_CASE("live: stack() cost") {
  if (!may_run_live()) return;
  for (const auto& interp : interpreters()) {
    Child child(kScript, interp.path, {});
    const auto tids = child.wait_for({"main", "worker", "ctypes"}, std::chrono::seconds(20));
    REQUIRE(tids.size() == 3);
    {
      // Wait (with a throwaway reader) until main sits in time.sleep, so both timings see the same stack.
      auto warmup = attach_with_retry(child.pid());
      REQUIRE(warmup);
      const auto m = markers(kScript);
      check_stack(*warmup, tids.at("main"), {{"inner_sleep", m.at("sleep")}});
    }
    auto t0 = Clock::now();
    auto py = attach_with_retry(child.pid());
    const double attach_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    REQUIRE(py);
    t0 = Clock::now();
    const auto cold = py->stack(tids.at("main"));
    const double cold_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    constexpr int kRuns = 2000;
    t0 = Clock::now();
    for (int i = 0; i < kRuns; ++i) (void)py->stack(tids.at("main"));
    const double warm_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kRuns;
    MESSAGE(interp.path, ": attach ", attach_us, " us; stack(tid) of ", cold.size(), " frames: cold ", cold_us,
            " us, warm ", warm_us, " us");
    CHECK(cold.size() == 6);
  }
}
