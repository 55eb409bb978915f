// The frame walk exists twice: in BPF (copy_py_frames in bpf/loopstall.bpf.c,
// run by the cpu-clock sampler) and in userspace (walk_frames). This test runs
// the real BPF programs (an Engine, as the daemon loads them) against a real
// loop under every interpreter found, and checks that for the same stack both
// walks give the same (code object, instruction) pairs.
//
// The stack is the same for both because the loop thread burns the CPU inside
// one C call (sum(range(n))): its Python frames cannot change while it runs.
// A sample whose innermost frame names `burn` was taken inside that call; the
// userspace walk right after, while the child has not yet said "done", reads
// the same frames. Needs root (BPF); skipped without it unless CI=true.
#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "live_support.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/engine.hpp"
#include "loopstall/python/frame_walker.hpp"
#include "loopstall/python/stack_reader.hpp"

using namespace loopstall;
using namespace loopstall::python;
using namespace loopstall::python::test;
using namespace std::chrono_literals;

namespace {

const std::string kScript = std::string(LOOPSTALL_PY_TEST_DIR) + "/walk_target.py";
// sum(range(kBurn)): ~0.5-2 s on the development VM, plenty of 4 ms samples.
constexpr int kBurn = 8'000'000;

std::string describe(const std::vector<RawFrame>& raw, const std::vector<PyFrame>& named) {
  std::string s;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "\n  code %#llx instr %#llx ", static_cast<unsigned long long>(raw[i].code),
                  static_cast<unsigned long long>(raw[i].instr));
    s += buf;
    if (i < named.size()) s += named[i].function + ":" + (named[i].line ? std::to_string(*named[i].line) : "?");
  }
  return s;
}

struct Agreement {
  std::vector<RawFrame> bpf, user;
  std::vector<PyFrame> named;  // the BPF frames, named
};

}  // namespace

TEST_CASE("BPF and userspace frame walks agree on the same stack, every interpreter") {
  if (!may_run_live()) return;
  const auto m = markers(kScript);
  REQUIRE(m.count("burn"));
  EngineOptions opt;
  opt.tuning.threshold_ms = 20;  // samples after 10 ms of an iteration
  opt.tuning.sample_hz = 250;    // per CPU
  Engine engine(opt);

  const auto interps = interpreters();
  REQUIRE_FALSE(interps.empty());
  for (const auto& interp : interps) {
    INFO("interpreter ", interp.path);
    Child child(kScript, interp.path, {});
    const std::string hello = child.read_line(20s);
    REQUIRE(hello.rfind("tid ", 0) == 0);
    const auto tid = static_cast<std::uint32_t>(std::stoul(hello.substr(4)));
    const auto pid = static_cast<std::uint32_t>(child.pid());
    engine.insert_proc_state(pid, LS_PROC_WATCH);  // its first epoll_wait makes the thread a loop
    auto py = PyProcess::attach(child.pid());
    REQUIRE(py);
    const auto walk = py->bpf_thread(tid);  // what the daemon writes to py_threads
    REQUIRE(walk);
    engine.set_py_thread(tid, *walk);

    std::optional<Agreement> seen;
    int samples = 0;
    for (int attempt = 0; attempt < 5 && !seen; ++attempt) {
      const std::uint64_t sent_ns = monotonic_ns();  // the sampler's clock
      REQUIRE(child.send(std::to_string(kBurn)));
      bool done = false;
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (!done && !seen && std::chrono::steady_clock::now() < deadline) {
        std::optional<Agreement> got;
        engine.poll(50, [&](const void* data, std::size_t size) {
          const auto* e = static_cast<const ls_sample_event*>(data);
          if (got || size < offsetof(ls_sample_event, stack) || e->hdr.type != LS_EV_SAMPLE || e->hdr.tid != tid ||
              e->py_status != LS_PY_OK || e->ts_ns < sent_ns)
            return;
          ++samples;
          Agreement a;
          for (std::uint32_t i = 0; i < e->py_nframes && i < LS_PY_MAX_FRAMES; ++i)
            a.bpf.push_back({e->py_frames[i].code, e->py_frames[i].instr});
          a.named = py->resolve_frames(a.bpf);
          if (a.named.empty() || a.named.front().function != "burn") return;  // not inside the C call
          // The same thread now, walked from userspace.
          const auto tstate = py->thread_state(tid);
          if (tstate) a.user = walk_frames(ProcessMemory(child.pid()), py->offsets(), *tstate, kMaxFrames, 0);
          got = std::move(a);
        });
        // Still burning after the userspace walk: both walks saw the frames of one C call.
        const std::string line = child.read_line(0ms);
        done = line == "done";
        if (got && !done) seen = std::move(got);
      }
      while (!done) {
        const std::string line = child.read_line(30s);
        if (line.empty()) break;
        done = line == "done";
      }
    }
    INFO("BPF samples of the thread: ", samples);
    REQUIRE(seen);
    INFO("BPF walk:", describe(seen->bpf, seen->named));
    INFO("userspace walk:", describe(seen->user, {}));
    CHECK(seen->bpf == seen->user);
    // And both are the real stack: burn <- via_c (3.12+: across a C-stack shim) <- iteration <- main <- module.
    REQUIRE(seen->named.size() == 5);
    CHECK(seen->named[0].line == m.at("burn"));
    CHECK(seen->named[1].function == "via_c");
    CHECK(seen->named[1].line == m.at("via_c"));
    CHECK(seen->named[2].function == "iteration");
    CHECK(seen->named[3].function == "main");
    CHECK(seen->named[4].line == m.at("module"));
    for (const auto& f : seen->named) CHECK(std::filesystem::path(f.file).filename() == "walk_target.py");
    MESSAGE(interp.path, ": ", seen->bpf.size(), " frames, BPF and userspace walks equal: ", seen->bpf == seen->user,
            " (", samples, " samples)");
  }
}
