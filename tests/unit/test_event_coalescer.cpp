// The event coalescer's windows on a fake clock: what is written one by one,
// what is folded into a summary, and that nothing is lost.
#include <doctest/doctest.h>

#include <string>

#include "loopstall/event_coalescer.hpp"
#include "loopstall/json_sink.hpp"
#include "test_util.hpp"

using namespace loopstall;
using test::kMs;
using test::kSec;

namespace {

struct Rig {
  std::uint64_t now = 1000 * kSec;
  test::CapturingSink out;
  EventCoalescer co;
  int next_id = 0;
  explicit Rig(CoalesceOptions opt = {true, 10, 5}) : co(out, opt, [this] { return now; }) {}

  StallReport report(double ms, std::string function = "deep", Cause cause = Cause::BlockingSyscall,
                     std::uint32_t tid = 11) {
    StallReport r;
    r.stall_id = std::to_string(tid) + "-" + std::to_string(next_id++);
    r.pid = 10;
    r.tid = tid;
    r.duration_ms = ms;
    r.cause = cause;
    r.start_unix_ns = static_cast<std::int64_t>(now);
    if (!function.empty()) r.python_stacks = {{1, {{function, "/srv/storm.py", 12}}}};
    return r;
  }
  // A whole stall: 200 ms later its final report (the clock moves on).
  StallReport stall(double ms = 150, std::string function = "deep", Cause cause = Cause::BlockingSyscall,
                    std::uint32_t tid = 11) {
    StallReport r = report(ms, std::move(function), cause, tid);
    co.stall(r);
    now += 200 * kMs;
    co.tick(now);
    return r;
  }
  std::size_t finals() const {
    std::size_t n = 0;
    for (const auto& r : out.reports) n += r.ongoing ? 0 : 1;
    return n;
  }
  // Stalls the written finals stand for: 1 each, or a summary's count.
  std::uint64_t accounted() const {
    std::uint64_t n = 0;
    for (const auto& r : out.reports)
      if (!r.ongoing) n += r.coalesced ? r.coalesced->count : 1;
    return n;
  }
};

}  // namespace

TEST_CASE("coalescer: the first stalls of a window are written, repeats become one summary at the window's end") {
  Rig g;
  double longest = 0;
  for (int i = 0; i < 40; ++i) {  // 8 s of a 150..189 ms stall every 200 ms
    const double ms = 150 + i;
    g.stall(ms);
    longest = std::max(longest, ms);
  }
  CHECK(g.finals() == 5);  // the burst, nothing else yet
  for (const auto& r : g.out.reports) CHECK_FALSE(r.coalesced);
  g.now += 3 * kSec;  // past the window's end
  g.co.tick(g.now);
  REQUIRE(g.finals() == 6);
  const StallReport& s = g.out.reports.back();
  REQUIRE(s.coalesced);
  CHECK(s.coalesced->count == 35);
  CHECK(s.coalesced->max_ms == doctest::Approx(longest));
  CHECK(s.duration_ms == doctest::Approx(longest));  // the summary is the longest one, with its evidence
  CHECK(s.python_stacks.at(0).frames.at(0).function == "deep");
  double total = 0;
  for (int i = 5; i < 40; ++i) total += 150 + i;
  CHECK(s.coalesced->total_ms == doctest::Approx(total));
  CHECK(s.coalesced->first_start_unix_ns < s.coalesced->last_start_unix_ns);
  CHECK(s.coalesced->window_s == 10);
  CHECK(g.co.counts().coalesced == 35);
  CHECK(g.co.counts().summaries == 1);
  CHECK(g.accounted() == 40);
}

TEST_CASE("coalescer: while the repeats go on, each window is only a summary; a quiet window frees the loop") {
  Rig g;
  for (int i = 0; i < 150; ++i) g.stall();  // 30 s
  g.co.flush();
  CHECK(g.accounted() == 150);
  // 5 one by one, then a summary per window (3 windows + the flushed one).
  CHECK(g.finals() <= 5 + 4);
  CHECK(g.co.loops_followed() == 0);
  Rig q;
  for (int i = 0; i < 10; ++i) q.stall();
  q.now += 25 * kSec;
  q.co.tick(q.now);  // the window with repeats ends (summary), then one with nothing
  q.now += 11 * kSec;
  q.co.tick(q.now);
  CHECK(q.co.loops_followed() == 0);
  CHECK(q.accounted() == 10);
  // A fresh start: the burst allowance again.
  for (int i = 0; i < 5; ++i) q.stall();
  CHECK(q.finals() == 5 + 1 + 5);
}

TEST_CASE("coalescer: another culprit, another cause, a much longer or a 1 s stall are written") {
  Rig g;
  for (int i = 0; i < 20; ++i) g.stall();
  const std::size_t before = g.finals();
  CHECK(before == 5);
  g.stall(150, "other_function");
  CHECK(g.finals() == before + 1);
  g.stall(150, "deep", Cause::Cpu);
  CHECK(g.finals() == before + 2);
  g.stall(400);  // over twice the window's longest
  CHECK(g.finals() == before + 3);
  g.stall(1000);
  CHECK(g.finals() == before + 4);
  g.stall(150, "deep", Cause::BlockingSyscall, 12);  // another loop
  CHECK(g.finals() == before + 5);
  g.co.flush();
  CHECK(g.accounted() == 25);
}

TEST_CASE("coalescer: a report without stacks joins its loop's culprit of the same cause") {
  Rig g;
  for (int i = 0; i < 5; ++i) g.stall();
  g.stall(150, "");
  g.stall(150, "");
  CHECK(g.finals() == 5);
  g.co.flush();
  REQUIRE(g.out.reports.back().coalesced);
  CHECK(g.out.reports.back().coalesced->count == 2);

  Rig first;  // the loop's first report had no stacks: later ones with stacks name the same culprit
  first.stall(150, "");
  for (int i = 0; i < 4; ++i) first.stall();
  first.stall(150, "");
  first.stall();
  CHECK(first.finals() == 5);
  first.stall(150, "other");  // a culprit of its own
  CHECK(first.finals() == 6);
}

TEST_CASE("coalescer: the summary shows the longest repeat that has stacks; max_ms the longest of all") {
  Rig g;
  for (int i = 0; i < 5; ++i) g.stall();
  g.stall(170, "");  // folded, no stacks (not read)
  g.stall(155);      // folded, with stacks
  g.stall(160, "");
  g.co.flush();
  const StallReport& s = g.out.reports.back();
  REQUIRE(s.coalesced);
  CHECK(s.coalesced->count == 3);
  CHECK(s.coalesced->max_ms == 170);
  CHECK(s.duration_ms == 155);
  CHECK_FALSE(s.python_stacks.empty());
}

TEST_CASE("coalescer: ongoing reports of repeats are held under 1 s, a hang's is written") {
  Rig g;
  for (int i = 0; i < 6; ++i) g.stall();
  const std::size_t written = g.out.reports.size();
  // A repeat: its ongoing report is held, its final folded.
  StallReport on = g.report(110);
  on.ongoing = true;
  g.co.stall(on);
  CHECK(g.out.reports.size() == written);
  StallReport fin = on;
  fin.ongoing = false;
  fin.duration_ms = 150;
  g.now += 40 * kMs;
  g.co.stall(fin);
  CHECK(g.out.reports.size() == written);
  CHECK(g.co.counts().ongoing_withheld == 1);
  // A hang: held at 110 ms, written by the tick once it has lasted 1 s.
  StallReport hang = g.report(110);
  hang.ongoing = true;
  g.co.stall(hang);
  g.now += 500 * kMs;
  g.co.tick(g.now);
  CHECK(g.out.reports.size() == written);
  g.now += 400 * kMs;
  g.co.tick(g.now);
  REQUIRE(g.out.reports.size() == written + 1);
  CHECK(g.out.reports.back().stall_id == hang.stall_id);
  CHECK(g.out.reports.back().ongoing);
  // Its final (several seconds) is written, as is any final whose ongoing was.
  StallReport end = hang;
  end.ongoing = false;
  end.duration_ms = 5000;
  g.now += 4 * kSec;
  g.co.stall(end);
  CHECK(g.out.reports.back().stall_id == hang.stall_id);
  CHECK_FALSE(g.out.reports.back().ongoing);
  CHECK_FALSE(g.out.reports.back().coalesced);
}

TEST_CASE("coalescer: stalls reported ongoing, then final: the burst has both, repeats neither") {
  Rig g;
  for (int i = 0; i < 30; ++i) {
    StallReport on = g.report(110);
    on.ongoing = true;
    g.co.stall(on);
    g.now += 40 * kMs;
    StallReport fin = on;
    fin.ongoing = false;
    fin.duration_ms = 150;
    g.co.stall(fin);
    g.now += 160 * kMs;
    g.co.tick(g.now);
  }
  CHECK(g.out.reports.size() == 10);  // 5 ongoing + 5 final
  CHECK(g.co.counts().ongoing_withheld == 25);
  g.co.flush();
  CHECK(g.accounted() == 30);
}

TEST_CASE("coalescer: a final whose ongoing report was written is written too") {
  Rig g;
  for (int i = 0; i < 6; ++i) g.stall();
  StallReport on = g.report(1200);  // too long to hold
  on.ongoing = true;
  g.co.stall(on);
  REQUIRE(g.out.reports.back().stall_id == on.stall_id);
  // Its final is short of 1 s only if the clocks disagree; it must still come.
  StallReport fin = on;
  fin.ongoing = false;
  fin.duration_ms = 160;
  g.co.stall(fin);
  CHECK(g.out.reports.back().stall_id == on.stall_id);
  CHECK_FALSE(g.out.reports.back().ongoing);
}

TEST_CASE("coalescer: flush writes every summary and held report (shutdown, capture end)") {
  Rig g;
  for (int i = 0; i < 12; ++i) g.stall(150, "deep", Cause::BlockingSyscall, 11);
  for (int i = 0; i < 12; ++i) g.stall(150, "deep", Cause::BlockingSyscall, 12);
  StallReport on = g.report(120, "deep", Cause::BlockingSyscall, 11);
  on.ongoing = true;
  g.co.stall(on);
  const std::size_t before = g.out.reports.size();
  g.co.finish(Summary{});
  CHECK(g.out.reports.size() == before + 3);  // two summaries, the held ongoing report
  CHECK(g.out.summaries.size() == 1);
  CHECK(g.accounted() == 24);
  CHECK(g.co.loops_followed() == 0);
}

TEST_CASE("coalescer: every tick reaches the sink behind it, on or off, due or not") {
  for (const bool on : {true, false}) {
    Rig g({on, 10, 5});
    g.co.tick(g.now);
    g.co.tick(g.now + kSec / 10);
    CHECK(g.out.ticks == std::vector<std::uint64_t>{g.now, g.now + kSec / 10});
  }
}

TEST_CASE("coalescer: memory is bounded; what does not fit is written, counted") {
  Rig g;
  for (std::uint32_t tid = 1; tid <= CoalesceOptions::kMaxLoops + 10; ++tid)
    g.co.stall(g.report(150, "f", Cause::Cpu, tid));
  CHECK(g.co.loops_followed() == CoalesceOptions::kMaxLoops);
  CHECK(g.co.counts().table_full == 10);
  CHECK(g.finals() == CoalesceOptions::kMaxLoops + 10);
  Rig c;
  for (std::size_t i = 0; i < CoalesceOptions::kMaxCulpritsPerLoop + 3; ++i)
    c.co.stall(c.report(150, "f" + std::to_string(i)));
  CHECK(c.co.counts().table_full == 3);
  CHECK(c.finals() == CoalesceOptions::kMaxCulpritsPerLoop + 3);
  g.now += 11 * kSec;
  g.co.tick(g.now);
  CHECK(g.co.loops_followed() == 0);  // windows with nothing folded are forgotten
}

TEST_CASE("coalescer: disabled, everything passes; the summary is schema-shaped JSON") {
  Rig g({false, 10, 5});
  for (int i = 0; i < 20; ++i) g.stall();
  CHECK(g.finals() == 20);
  Rig h;
  for (int i = 0; i < 8; ++i) h.stall();
  h.co.flush();
  const auto j = to_json(h.out.reports.back());
  REQUIRE(j.contains("coalesced"));
  CHECK(j["coalesced"]["count"] == 3);
  CHECK(j["coalesced"]["window_s"] == 10.0);
  CHECK(j["type"] == "stall");
  CHECK(j["ongoing"] == false);
  CHECK_FALSE(to_json(h.out.reports.front()).contains("coalesced"));
}
