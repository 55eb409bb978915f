// The Detector driven by a fake engine: which processes it watches or
// ignores, the loops it adopts, what it forgets, how a second consumer (a
// capture through the daemon) starts, and the reports that reach the sinks.
// Real processes (forked children) stand for the host's processes, since the
// Detector reads /proc for their threads; what they are (Python or not)
// comes from a fake inspector.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "loopstall/capture_session.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/detector.hpp"
#include "test_util.hpp"

using namespace loopstall;
using namespace loopstall::test;

namespace {

// Records what the Detector asks of the BPF side and plays back ring buffer
// records and loops-map snapshots.
class FakeEngine : public LoopEngine {
 public:
  std::deque<std::vector<unsigned char>> ring;
  std::vector<ls_loop> loops;
  std::map<std::uint32_t, ls_proc_state> decided, inserted;
  std::map<std::uint32_t, int> insert_calls;
  std::set<std::uint32_t> released, forgotten, known;
  std::vector<ls_loop> adopted;
  std::vector<std::string> gc_binaries;
  std::uint64_t threshold = 0;

  template <typename T>
  void push(const T& rec) {
    const auto* b = reinterpret_cast<const unsigned char*>(&rec);
    ring.emplace_back(b, b + sizeof rec);
  }

  int poll(int, const EventHandler& on_event) override {
    int n = 0;
    for (; !ring.empty(); ++n) {
      const auto rec = std::move(ring.front());
      ring.pop_front();
      on_event(rec.data(), rec.size());
    }
    return n;
  }
  void set_threshold_ns(std::uint64_t ns) override { threshold = ns; }
  std::uint64_t threshold_ns() const override { return threshold; }
  void set_sample_period_ns(std::uint64_t) override {}
  bool attach_gc_probes(const std::string& binary) override {
    gc_binaries.push_back(binary);
    return true;
  }
  void set_proc_state(std::uint32_t tgid, ls_proc_state st) override { decided[tgid] = st; }
  void insert_proc_state(std::uint32_t tgid, ls_proc_state st) override {
    inserted[tgid] = st;
    insert_calls[tgid]++;
    known.insert(tgid);
  }
  std::vector<std::uint32_t> pending_procs() override { return {}; }
  std::vector<std::uint32_t> known_procs() override { return {known.begin(), known.end()}; }
  void forget_proc(std::uint32_t tgid) override {
    forgotten.insert(tgid);
    known.erase(tgid);
  }
  void set_py_thread(std::uint32_t, const ls_py_thread&) override {}
  void forget_py_thread(std::uint32_t) override {}
  bool adopt_loop(const ls_loop& init) override {
    if (is_loop(init.tid)) return false;
    adopted.push_back(init);
    return true;
  }
  bool is_loop(std::uint32_t tid) const override {
    return std::any_of(adopted.begin(), adopted.end(), [&](const ls_loop& l) { return l.tid == tid; });
  }
  void release_loops(std::uint32_t tgid) override { released.insert(tgid); }
  std::optional<ls_loop> find_loop(std::uint32_t tid) const override {
    for (const ls_loop& l : loops)
      if (l.tid == tid) return l;
    return std::nullopt;
  }
  std::uint64_t scan_loops(std::vector<ls_loop>& out) override {
    out = loops;
    return monotonic_ns();
  }
  BpfStats stats() override { return {}; }
  MapOccupancy map_occupancy() override { return {}; }
  std::vector<ProgramStats> program_stats() override { return {}; }
  const std::vector<std::pair<std::string, int>>& attach_failures() const override { return failures_; }
  int attached_programs() const override { return 0; }

 private:
  std::vector<std::pair<std::string, int>> failures_;
};

// No process memory is read in these tests.
class NoStacks : public StackSource {
 public:
  std::optional<StackSample> on_cpu(const ls_sample_event&) override { return std::nullopt; }
  std::optional<StackSample> blocked(std::uint32_t, std::uint32_t) override { return std::nullopt; }
  std::optional<ls_py_thread> python_thread(std::uint32_t, std::uint32_t) override { return std::nullopt; }
  std::vector<PyFrame> python_frames(std::uint32_t, std::uint32_t) override { return {}; }
  bool interpreter_finalizing(std::uint32_t) override { return false; }
  void forget(std::uint32_t) override {}
};

// A child process asleep in epoll_wait (an idle event loop) or in pause().
class Child {
 public:
  explicit Child(bool epoll) {
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      if (epoll) {
        const int ep = epoll_create1(0);
        epoll_event ev[1];
        while (true) epoll_wait(ep, ev, 1, -1);
      }
      while (true) pause();
    }
    // Asleep in its syscall before the test looks (a few ms).
    const long want = epoll ? 232 : 34;  // x86-64 epoll_wait, pause
    for (int i = 0; i < 500 && syscall_nr() != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(syscall_nr() == want);
  }
  ~Child() { end(); }
  void end() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::uint32_t pid() const { return static_cast<std::uint32_t>(pid_); }

 private:
  long syscall_nr() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/syscall");
    long nr = -1;
    in >> nr;
    return nr;
  }
  pid_t pid_ = -1;
};

ProcInfo python_proc(std::uint32_t pid) {
  ProcInfo p;
  p.pid = pid;
  p.python = true;
  p.python_version = "3.11";
  p.native_loop = LoopKind::Python;
  p.exe = "/usr/bin/python3.11";
  p.comm = "python3.11";
  p.service = "shop";
  return p;
}

// What the fake /proc says about the children; everything else on the host
// is unknown (ignored). Counts the reads.
struct Inspector {
  std::map<std::uint32_t, ProcInfo> procs;
  std::map<std::uint32_t, int> reads;
  ProcInspector fn() {
    return [this](std::uint32_t pid) -> std::optional<ProcInfo> {
      auto it = procs.find(pid);
      if (it == procs.end()) return std::nullopt;
      reads[pid]++;
      return it->second;
    };
  }
};

struct Rig {
  FakeEngine* engine = nullptr;
  Detector det;
  Rig()
      : det(
            EngineOptions{},
            [this](const EngineOptions&) {
              auto e = std::make_unique<FakeEngine>();
              engine = e.get();
              return e;
            },
            std::make_unique<NoStacks>()) {}
};

ls_new_proc_event new_proc(std::uint32_t pid) {
  ls_new_proc_event e;
  std::memset(&e, 0, sizeof e);
  e.hdr.type = LS_EV_NEW_PROC;
  e.hdr.tgid = pid;
  e.hdr.tid = pid;
  return e;
}

}  // namespace

TEST_CASE("a process that calls epoll_wait is watched or ignored as the consumers decide") {
  Child loop(true), other(false);
  Inspector procs;
  procs.procs[loop.pid()] = python_proc(loop.pid());
  ProcInfo nginx = python_proc(other.pid());
  nginx.python = false;
  procs.procs[other.pid()] = nginx;
  Rig rig;
  CapturingSink sink;
  Correlator corr(Selection{}, 100, sink, procs.fn());
  rig.det.add(corr);
  CHECK(rig.engine->threshold == 100'000'000ULL);  // the consumer's threshold reaches the kernel

  // Both ask (their first epoll_wait) as if they had started after the capture.
  rig.engine->decided.clear();
  rig.engine->push(new_proc(loop.pid()));
  rig.engine->push(new_proc(other.pid()));
  rig.det.step(0);
  CHECK(rig.engine->decided.at(loop.pid()) == LS_PROC_WATCH);
  CHECK(rig.engine->decided.at(other.pid()) == LS_PROC_IGNORE);
  // The slot BPF gave the ignored process's asking thread is taken back.
  CHECK(rig.engine->released.count(other.pid()) == 1);
  CHECK(rig.engine->released.count(loop.pid()) == 0);
  CHECK(corr.watches(loop.pid()));
  CHECK_FALSE(corr.watches(other.pid()));
  // A Python process's GC probes are attached through its root.
  CHECK(std::count(rig.engine->gc_binaries.begin(), rig.engine->gc_binaries.end(),
                   "/proc/" + std::to_string(loop.pid()) + "/root/usr/bin/python3.11") >= 1);
  rig.det.remove(corr);
}

TEST_CASE("a consumer decides ahead for running processes and adopts loops asleep in epoll_wait") {
  Child loop(true), sleeper(true);
  Inspector procs;
  procs.procs[loop.pid()] = python_proc(loop.pid());
  Rig rig;
  CapturingSink sink;
  Selection sel;
  Correlator corr(sel, 100, sink, procs.fn());
  rig.det.add(corr);
  CHECK(rig.engine->inserted.at(loop.pid()) == LS_PROC_WATCH);
  CHECK(rig.engine->inserted.count(sleeper.pid()) == 0);  // not Python: no decision written, no adoption
  REQUIRE(rig.engine->adopted.size() == 1);
  const ls_loop& a = rig.engine->adopted[0];
  CHECK(a.tid == loop.pid());
  CHECK(a.tgid == loop.pid());
  CHECK(a.iter_start_ns == 0);  // idle: its next iteration is measured from its start
  rig.det.remove(corr);
}

TEST_CASE("a capture through the daemon takes what the daemon knows instead of reading /proc again") {
  Child loop(true);
  Inspector daemon_procs, capture_procs;
  daemon_procs.procs[loop.pid()] = capture_procs.procs[loop.pid()] = python_proc(loop.pid());
  Rig rig;
  CapturingSink daemon_sink, capture_sink;
  Correlator daemon(Selection{}, 100, daemon_sink, daemon_procs.fn());
  rig.det.add(daemon);
  REQUIRE(daemon.watches(loop.pid()));
  REQUIRE(rig.engine->insert_calls.at(loop.pid()) == 1);
  REQUIRE(rig.engine->adopted.size() == 1);

  Correlator capture(Selection{}, 50, capture_sink, capture_procs.fn());
  rig.det.add(capture);
  CHECK(capture.watches(loop.pid()));
  CHECK(capture.service_of(loop.pid()) == "shop");
  CHECK(capture_procs.reads[loop.pid()] == 0);          // nothing read again
  CHECK(rig.engine->insert_calls.at(loop.pid()) == 1);  // the kernel watches it already
  CHECK(rig.engine->threshold == 50'000'000ULL);        // the lower threshold reaches the kernel
  // A capture of other processes only does not take it.
  Selection only_others;
  only_others.pids = {1};
  Correlator narrow(only_others, 100, capture_sink, capture_procs.fn());
  rig.det.add(narrow);
  CHECK_FALSE(narrow.watches(loop.pid()));
  rig.det.remove(narrow);
  rig.det.remove(capture);
  CHECK(rig.engine->threshold == 100'000'000ULL);  // back to the daemon's
  rig.det.remove(daemon);
}

TEST_CASE("a capture session reports what is pending and its summary, then leaves the detector") {
  Rig rig;
  CapturingSink daemon_sink, capture_sink;
  Inspector nothing;
  Correlator daemon(Selection{}, 100, daemon_sink, nothing.fn());
  rig.det.add(daemon);
  // Sessions read the real /proc: pid 1 (init) only, which is never Python.
  Selection none;
  none.pids = {1};
  {
    CaptureSession s(rig.det, none, 20, capture_sink);
    CHECK(rig.engine->threshold == 20'000'000ULL);
    CHECK(s.running());
    s.finish();
    CHECK_FALSE(s.running());
    CHECK(rig.engine->threshold == 100'000'000ULL);
    REQUIRE(capture_sink.summaries.size() == 1);
    s.finish();  // once
    CHECK(capture_sink.summaries.size() == 1);
  }
  {
    CaptureSession s(rig.det, none, 30, capture_sink);
    s.stop();  // the daemon's own watch: no summary
    CHECK(capture_sink.summaries.size() == 1);
  }
  {
    CaptureSession s(rig.det, none, 40, capture_sink);
    CHECK(rig.engine->threshold == 40'000'000ULL);
  }  // a client gone: out of the detector, nothing reported
  CHECK(rig.engine->threshold == 100'000'000ULL);
  CHECK(capture_sink.summaries.size() == 1);
  rig.det.remove(daemon);
}

TEST_CASE("stalls and hung loops of watched processes reach the sinks") {
  Child loop(true);
  Inspector procs;
  procs.procs[loop.pid()] = python_proc(loop.pid());
  Rig rig;
  CapturingSink sink;
  Correlator corr(Selection{}, 100, sink, procs.fn());
  rig.det.add(corr);
  REQUIRE(corr.watches(loop.pid()));

  // A 300 ms iteration ended: the ring buffer's stall event.
  const std::uint64_t now = monotonic_ns();
  ls_loop l = make_loop(loop.pid(), loop.pid(), now - 400 * kMs);
  l.on_cpu_ns = 300 * kMs;
  rig.engine->push(make_stall_event(l, now - 100 * kMs, "python3.11"));
  // Another thread hung for 500 ms so far: only the loops scan sees it.
  ls_loop hung = make_loop(loop.pid() + 1, loop.pid(), now - 500 * kMs);
  hung.on_cpu_ns = 500 * kMs;
  rig.engine->loops = {hung};
  // A stall of a process nobody watches is nobody's.
  ls_loop stranger = make_loop(1, 1, now - 400 * kMs);
  rig.engine->push(make_stall_event(stranger, now, "init"));
  std::this_thread::sleep_for(std::chrono::milliseconds(25));  // a scan is due
  rig.det.step(0);

  std::vector<StallReport> final_reports, ongoing;
  for (const auto& r : sink.reports) (r.ongoing ? ongoing : final_reports).push_back(r);
  REQUIRE(final_reports.size() == 1);
  CHECK(final_reports[0].pid == loop.pid());
  CHECK(final_reports[0].duration_ms == doctest::Approx(300));
  CHECK(final_reports[0].service == "shop");
  REQUIRE(ongoing.size() == 1);
  CHECK(ongoing[0].tid == loop.pid() + 1);
  CHECK(ongoing[0].duration_ms >= 500);
  rig.det.remove(corr);
}

// Python frames read from memory after the sample (BPF had none for the thread).
class FramesNow : public NoStacks {
 public:
  std::optional<StackSample> on_cpu(const ls_sample_event&) override {
    StackSample s;
    s.python = {PyFrame{"hog", "/srv/app.py", 7}};
    return s;
  }
};

TEST_CASE("Python frames read after the sample count only while its iteration is still going on") {
  Child loop(true);
  Inspector procs;
  procs.procs[loop.pid()] = python_proc(loop.pid());
  FakeEngine* engine = nullptr;
  Detector det(
      EngineOptions{},
      [&](const EngineOptions&) {
        auto e = std::make_unique<FakeEngine>();
        engine = e.get();
        return e;
      },
      std::make_unique<FramesNow>());
  CapturingSink sink;
  Correlator corr(Selection{}, 100, sink, procs.fn());
  det.add(corr);
  REQUIRE(corr.watches(loop.pid()));

  const std::uint64_t now = monotonic_ns();
  // Two 300 ms stalls, one sample each taken while they ran (BPF could not
  // read the thread state: the frames are read when the sample is handled).
  // When it is handled the loop is inside the first one still, but the
  // second is over: its frames would be whatever ran next.
  ls_loop first = make_loop(loop.pid(), loop.pid(), now - 900 * kMs);
  ls_loop second = make_loop(loop.pid(), loop.pid(), now - 400 * kMs);
  const auto sample = [&](const ls_loop& l) {
    auto e = std::make_unique<ls_sample_event>();
    std::memset(e.get(), 0, sizeof *e);
    e->hdr.type = LS_EV_SAMPLE;
    e->hdr.tgid = l.tgid;
    e->hdr.tid = l.tid;
    e->iter_start_ns = l.iter_start_ns;
    e->ts_ns = l.iter_start_ns + 150 * kMs;
    e->py_status = LS_PY_FAULT;
    engine->push(*e);
  };
  for (ls_loop* l : {&first, &second}) l->on_cpu_ns = 300 * kMs;
  engine->loops = {first};  // the loop is in the first iteration while both samples are handled
  sample(first);
  sample(second);
  engine->push(make_stall_event(first, now - 600 * kMs, "python3.11"));
  engine->push(make_stall_event(second, now - 100 * kMs, "python3.11"));
  det.step(0);

  std::vector<const StallReport*> finals;
  for (const auto& r : sink.reports)
    if (!r.ongoing) finals.push_back(&r);
  REQUIRE(finals.size() == 2);
  REQUIRE(finals[0]->python_stacks.size() == 1);
  CHECK(finals[0]->python_stacks[0].frames[0].function == "hog");
  CHECK(finals[1]->python_stacks.empty());
  det.remove(corr);
}

TEST_CASE("processes that are gone are forgotten everywhere") {
  auto loop = std::make_unique<Child>(true);
  const std::uint32_t pid = loop->pid();
  Inspector procs;
  procs.procs[pid] = python_proc(pid);
  Rig rig;
  CapturingSink sink;
  Correlator corr(Selection{}, 100, sink, procs.fn());
  rig.det.add(corr);
  REQUIRE(corr.watches(pid));
  loop->end();  // exits; its pid is free
  // The sweep runs every 2 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (!rig.engine->forgotten.count(pid) && std::chrono::steady_clock::now() < deadline) rig.det.step(50);
  CHECK(rig.engine->forgotten.count(pid) == 1);
  CHECK_FALSE(corr.watches(pid));
  CHECK(corr.known_process(pid) == nullptr);
  rig.det.remove(corr);
}
