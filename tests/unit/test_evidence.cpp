// StallEvidence: merging samples and blocks into python_stacks/native_stack,
// and the correlator carrying evidence into its reports.
#include <doctest/doctest.h>

#include <algorithm>

#include "loopstall/correlator.hpp"
#include "loopstall/decode.hpp"
#include "loopstall/evidence.hpp"
#include "test_util.hpp"

using namespace loopstall;
using namespace loopstall::test;

namespace {

StackSample stack(std::initializer_list<const char*> py, std::initializer_list<const char*> native = {}) {
  StackSample s;
  int line = 10;
  for (const char* f : py) s.python.push_back({f, "/app/x.py", line++});
  for (const char* f : native) s.native.push_back({f, "/lib/libc.so.6", 0x1000});
  return s;
}

// A correlator watching one Python process, pid 100.
struct OnePython {
  CapturingSink sink;
  ProcInfo p;
  Correlator c;
  OnePython()
      : p(info()), c({}, 100, sink, [this](std::uint32_t pid) -> std::optional<ProcInfo> {
          if (pid != 100) return std::nullopt;
          return p;
        }) {
    REQUIRE(c.classify(100) == LS_PROC_WATCH);
  }
  static ProcInfo info() {
    ProcInfo i;
    i.pid = 100;
    i.python = true;
    i.exe = "/usr/bin/python3.11";
    return i;
  }
};

std::vector<std::string> functions(const PyStack& s) {
  std::vector<std::string> out;
  for (const auto& f : s.frames) out.push_back(f.function);
  return out;
}

}  // namespace

TEST_CASE("evidence: identical on-CPU stacks merge, most samples first") {
  StallEvidence e;
  e.add_cpu_sample(stack({"a", "main"}));
  e.add_cpu_sample(stack({"b", "main"}));
  e.add_cpu_sample(stack({"b", "main"}));
  StallReport r;
  r.cause = Cause::Cpu;
  e.fill(r, 10);
  REQUIRE(r.python_stacks.size() == 2);
  CHECK(r.python_stacks[0].samples == 2);
  CHECK(functions(r.python_stacks[0]) == std::vector<std::string>{"b", "main"});
  CHECK(r.python_stacks[1].samples == 1);
  CHECK(functions(r.python_stacks[1]) == std::vector<std::string>{"a", "main"});
}

TEST_CASE("evidence: same functions on different lines are different stacks") {
  StallEvidence e;
  StackSample s1 = stack({"a"}), s2 = stack({"a"});
  s2.python[0].line = 99;
  e.add_cpu_sample(s1);
  e.add_cpu_sample(s2);
  StallReport r;
  e.fill(r, 10);
  CHECK(r.python_stacks.size() == 2);
}

TEST_CASE("evidence: a block weighs its duration in sample periods") {
  StallEvidence e;
  e.add_cpu_sample(stack({"compute"}, {"cpu_fn"}));
  const StackSample blocked = stack({"sleepy"}, {"clock_nanosleep", "usleep"});
  e.add_block(1000, 30'000'000, blocked);
  e.add_block(1000, 250'000'000, std::nullopt);  // seen again later: longer, same episode
  StallReport r;
  r.cause = Cause::BlockingSyscall;
  e.fill(r, 10);
  REQUIRE(r.python_stacks.size() == 2);
  CHECK(functions(r.python_stacks[0]) == std::vector<std::string>{"sleepy"});
  CHECK(r.python_stacks[0].samples == 25);  // 250 ms / 10 ms
  CHECK(r.python_stacks[1].samples == 1);
  // Blocked stall: the native stack of the longest block.
  REQUIRE(r.native_stack.size() == 2);
  CHECK(r.native_stack[0].symbol == "clock_nanosleep");
}

TEST_CASE("evidence: native stack of an on-CPU stall is the most sampled one") {
  StallEvidence e;
  e.add_cpu_sample(stack({"f"}, {"hot"}));
  e.add_cpu_sample(stack({"f"}, {"hot"}));
  e.add_cpu_sample(stack({"f"}, {"cold"}));
  const StackSample blocked = stack({"g"}, {"read"});
  e.add_block(5, 1'000'000, blocked);
  StallReport r;
  r.cause = Cause::Cpu;
  e.fill(r, 10);
  REQUIRE_FALSE(r.native_stack.empty());
  CHECK(r.native_stack[0].symbol == "hot");
  // A short block is at least one sample.
  CHECK(r.python_stacks.back().samples == 1);
}

TEST_CASE("evidence: the longest of several blocks gives the native stack") {
  StallEvidence e;
  const StackSample a = stack({"a"}, {"futex"}), b = stack({"b"}, {"nanosleep"});
  e.add_block(1, 40'000'000, a);
  e.add_block(2, 90'000'000, b);
  e.add_block(1, 60'000'000, std::nullopt);
  StallReport r;
  r.cause = Cause::BlockingSyscall;
  e.fill(r, 10);
  CHECK(r.native_stack[0].symbol == "nanosleep");
  CHECK(functions(r.python_stacks[0]) == std::vector<std::string>{"b"});
  CHECK(r.python_stacks[1].samples == 6);
}

TEST_CASE("evidence: a block first seen without stacks gets them later") {
  StallEvidence e;
  e.add_block(7, 10'000'000, std::nullopt);
  StallReport before;
  e.fill(before, 10);
  CHECK(before.python_stacks.empty());
  const StackSample s = stack({"late"});
  e.add_block(7, 20'000'000, s);
  StallReport after;
  e.fill(after, 10);
  REQUIRE(after.python_stacks.size() == 1);  // one episode, now with its stacks
  CHECK(functions(after.python_stacks[0]) == std::vector<std::string>{"late"});
  CHECK(after.python_stacks[0].samples == 2);
}

TEST_CASE("evidence: the moving fill (final report) gives what the copying one (ongoing) gives") {
  for (const Cause cause : {Cause::BlockingSyscall, Cause::Cpu}) {
    CAPTURE(static_cast<int>(cause));
    StallEvidence e;
    e.add_cpu_sample(stack({"a", "main"}, {"parse"}));
    e.add_cpu_sample(stack({"a", "main"}, {"parse"}));
    const StackSample blocked = stack({"b", "main"}, {"nanosleep", "main"});
    e.add_block(7, 40'000'000, blocked);
    const StackSample same = stack({"a", "main"});
    e.add_block(9, 5'000'000, same);  // merged into the on-CPU stack
    StallReport ongoing, final;
    ongoing.cause = final.cause = cause;
    e.fill(ongoing, 10);
    std::move(e).fill(final, 10);
    REQUIRE(final.python_stacks.size() == ongoing.python_stacks.size());
    for (std::size_t i = 0; i < final.python_stacks.size(); ++i) {
      CHECK(final.python_stacks[i].samples == ongoing.python_stacks[i].samples);
      CHECK(final.python_stacks[i].frames == ongoing.python_stacks[i].frames);
    }
    CHECK(final.native_stack == ongoing.native_stack);
    CHECK_FALSE(final.native_stack.empty());
  }
}

TEST_CASE("evidence: frames lent to an ongoing report come back whole, for the next report and the final") {
  for (const Cause cause : {Cause::BlockingSyscall, Cause::Cpu}) {
    CAPTURE(static_cast<int>(cause));
    StallEvidence e;
    e.add_cpu_sample(stack({"a", "main"}, {"parse"}));
    e.add_cpu_sample(stack({"c", "main"}, {"parse"}));
    e.add_cpu_sample(stack({"a", "main"}, {"parse"}));
    e.add_block(7, 40'000'000, stack({"b", "main"}, {"nanosleep", "main"}));
    e.add_block(9, 5'000'000, stack({"a", "main"}));  // merged into the on-CPU stack
    StallReport copied;
    copied.cause = cause;
    e.fill(copied, 10);
    for (int round = 0; round < 2; ++round) {
      StallReport lent;
      lent.cause = cause;
      e.lend(lent, 10);
      REQUIRE(lent.python_stacks.size() == copied.python_stacks.size());
      for (std::size_t i = 0; i < lent.python_stacks.size(); ++i) {
        CHECK(lent.python_stacks[i].samples == copied.python_stacks[i].samples);
        CHECK(lent.python_stacks[i].frames == copied.python_stacks[i].frames);
      }
      CHECK(lent.native_stack == copied.native_stack);
      e.take_back(lent);
    }
    // Evidence added after the loan counts as usual.
    e.add_cpu_sample(stack({"c", "main"}, {"parse"}));
    StallReport final;
    final.cause = cause;
    std::move(e).fill(final, 10);
    REQUIRE(final.python_stacks.size() == 3);
    CHECK(final.native_stack == copied.native_stack);
    for (const PyStack& st : final.python_stacks) {
      const auto same = std::find_if(copied.python_stacks.begin(), copied.python_stacks.end(),
                                     [&](const PyStack& c) { return c.frames == st.frames; });
      REQUIRE(same != copied.python_stacks.end());
      CHECK(st.samples == same->samples + (st.frames.front().function == "c" ? 1 : 0));
    }
  }
}

TEST_CASE("evidence: distinct stacks are bounded") {
  StallEvidence e;
  for (int i = 0; i < 1000; ++i) {
    StackSample s = stack({"f"});
    s.python[0].line = i;
    e.add_cpu_sample(s);
  }
  StallReport r;
  e.fill(r, 10);
  CHECK(r.python_stacks.size() == StallEvidence::kMaxDistinctStacks);
}

TEST_CASE("evidence: empty evidence leaves the report's stacks empty") {
  StallEvidence e;
  CHECK(e.empty());
  StallReport r;
  e.fill(r, 10);
  CHECK(r.python_stacks.empty());
  CHECK(r.native_stack.empty());
}

TEST_CASE("correlator: stacks seen during a stall reach its ongoing and final reports") {
  OnePython f;
  auto& [sink, p, c] = f;
  const std::uint64_t t0 = 1000 * kSec;
  ls_loop l = make_loop(100, 100, t0);
  c.on_scan({l}, t0 + 10 * kMs);
  c.on_sample(100, 100, t0, stack({"hog"}));
  c.on_sample(999, 999, t0, stack({"not_watched"}));  // ignored
  l.on_cpu_ns = 120 * kMs;
  c.on_scan({l}, t0 + 120 * kMs);
  REQUIRE(sink.reports.size() == 1);
  CHECK(sink.reports[0].ongoing);
  REQUIRE(sink.reports[0].python_stacks.size() == 1);
  CHECK(sink.reports[0].python_stacks[0].frames[0].function == "hog");

  c.on_sample(100, 100, t0, stack({"hog"}));
  l.on_cpu_ns = 300 * kMs;
  c.on_stall(make_stall_event(l, t0 + 300 * kMs, "python3"));
  REQUIRE(sink.reports.size() == 2);
  CHECK_FALSE(sink.reports[1].ongoing);
  REQUIRE(sink.reports[1].python_stacks.size() == 1);
  CHECK(sink.reports[1].python_stacks[0].samples == 2);
  CHECK(c.evidence_count() == 0);  // the final report consumed it
}

TEST_CASE("correlator: evidence of iterations that never became stalls is dropped") {
  OnePython f;
  auto& c = f.c;
  const std::uint64_t t0 = 1000 * kSec;
  c.on_scan({}, t0);
  c.on_sample(100, 100, t0, stack({"short"}));  // sampled at 60 ms, ended at 80 ms
  ls_loop l = make_loop(100, 100, t0);
  c.on_stall(make_stall_event(l, t0 + 80 * kMs, "python3"));  // under the threshold
  CHECK(c.evidence_count() == 0);
  c.on_sample(100, 100, t0 + kSec, stack({"lost_final"}));
  CHECK(c.evidence_count() == 1);
  c.on_scan({}, t0 + 2 * kSec);
  CHECK(c.evidence_count() == 1);
  c.on_scan({}, t0 + 4 * kSec);
  CHECK(c.evidence_count() == 0);
}

TEST_CASE("correlator: nothing is reported for a loop whose interpreter is shutting down") {
  OnePython f;
  auto& [sink, p, c] = f;
  const std::uint64_t t0 = 1000 * kSec;
  ls_loop l = make_loop(100, 100, t0);
  c.interpreter_exiting(100);
  CHECK(c.exiting(100));
  c.on_scan({l}, t0 + 500 * kMs);  // long enough for an ongoing report
  c.on_stall(make_stall_event(l, t0 + 600 * kMs, "python3"));
  CHECK(sink.reports.empty());
  // A new process with the same pid later is judged afresh.
  c.forget_process(100);
  CHECK_FALSE(c.exiting(100));
}
