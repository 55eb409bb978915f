// Loops adopted mid-iteration: /proc parsers, the evidence that a thread runs
// a loop, the slot state for each thread state.
#include <doctest/doctest.h>

#include "loopstall/frameworks.hpp"
#include "loopstall/loop_adoption.hpp"
#include "loopstall/procinfo.hpp"

using namespace loopstall;

TEST_CASE("adoption: /proc parsers") {
  CHECK(parse_stat_state("1234 (python3.11) S 1 1234 ...") == 'S');
  // A comm with spaces and parentheses: the state follows the last ')'.
  CHECK(parse_stat_state("77 (a) b) R 1 2 3") == 'R');
  CHECK(parse_stat_state("garbage") == '?');
  CHECK(parse_stat_state("1 (x)") == '?');

  std::string stat = "42 (py (x)) S";
  for (int field = 4; field <= 38; ++field) stat += " " + std::to_string(field);
  CHECK(parse_stat_cpu(stat + " 1 0 0") == 1);
  CHECK(parse_stat_cpu(stat) == -1);  // cut short
  CHECK(parse_stat_cpu("no paren") == -1);

  CHECK(parse_syscall_nr("232 0x3 0x7ffd 0x40 0xffffffff 0x0 0x0 0x7ffd 0x7f") == 232);
  CHECK(parse_syscall_nr("running") == -1);
  CHECK(parse_syscall_nr("-1 0x7ffd 0x7f") == -1);
  CHECK(parse_syscall_nr("") == -1);

  CHECK(parse_exec_start_ms("x (1, #threads: 1)\n------\nse.exec_start   :   165323.898152\nse.vruntime : 1\n") ==
        doctest::Approx(165323.898152));
  CHECK_FALSE(parse_exec_start_ms("se.vruntime : 1\n").has_value());
  CHECK_FALSE(parse_exec_start_ms("se.exec_start : nan\n").has_value());
  CHECK_FALSE(parse_exec_start_ms("se.exec_start : -5\n").has_value());
}

TEST_CASE("adoption: which frames show a loop in progress") {
  const std::vector<PyFrame> asyncio{{"hang", "/app/x.py", 3},
                                     {"Handle._run", "/usr/lib/python3.11/asyncio/events.py", 80},
                                     {"BaseEventLoop._run_once", "/usr/lib/python3.11/asyncio/base_events.py", 1922},
                                     {"<module>", "/app/x.py", 40}};
  CHECK(frames_run_a_loop(asyncio, false));
  // 3.8-3.10 have co_name only.
  CHECK(frames_run_a_loop({{"_run_once", "/opt/py/lib/python3.8/asyncio/base_events.py", 1}}, false));
  CHECK(frames_run_a_loop({{"ReactorBase.mainLoop", "/usr/lib/python3/dist-packages/twisted/internet/base.py", 1}},
                          false));
  // A script sleeping at top level, a thread parked in a join: not loops.
  CHECK_FALSE(frames_run_a_loop({{"<module>", "/app/x.py", 4}}, false));
  CHECK_FALSE(
      frames_run_a_loop({{"Thread.join", "/usr/lib/python3.11/threading.py", 1}, {"<module>", "/a.py", 9}}, false));
  // Not fooled by look-alike names.
  CHECK_FALSE(frames_run_a_loop({{"my_run_forever", "/app/asyncio/base_events.py", 1}, {"<module>", "/a", 1}}, false));
  // gevent: a greenlet's frames end where it began, not at a module's top level.
  const std::vector<PyFrame> greenlet{{"ctypes_usleep", "/app/w.py", 22}};
  CHECK(frames_run_a_loop(greenlet, true));
  CHECK_FALSE(frames_run_a_loop(greenlet, false));
  CHECK_FALSE(frames_run_a_loop({{"main", "/app/w.py", 2}, {"<module>", "/app/w.py", 30}}, true));
  CHECK_FALSE(frames_run_a_loop({}, true));
}

TEST_CASE("adoption: slot state per thread state") {
  const std::uint64_t now = 10'000'000'000ULL;
  ThreadActivity idle{'S', 232, now - 5'000'000};
  auto l = adoption_state(1, 2, idle, false, now);
  REQUIRE(l);
  CHECK(l->tid == 2);
  CHECK(l->tgid == 1);
  CHECK(l->run_state == LS_IDLE);
  CHECK(l->iter_start_ns == 0);
  CHECK(l->adopted_start_ns == 0);

  // Asleep outside epoll_wait: adopted only on evidence, since it last ran.
  ThreadActivity asleep{'S', 230, now - 3'000'000'000ULL};
  CHECK_FALSE(adoption_state(1, 1, asleep, false, now));
  l = adoption_state(1, 1, asleep, true, now);
  REQUIRE(l);
  CHECK(l->run_state == LS_BLOCKED);
  CHECK(l->cur_syscall == 230);
  CHECK(l->iter_start_ns == now - 3'000'000'000ULL);
  CHECK(l->last_ts_ns == l->iter_start_ns);
  CHECK(l->adopted_start_ns == l->iter_start_ns);

  // Unknown last run (no CONFIG_SCHED_DEBUG), or a time from the future: now.
  ThreadActivity unknown{'D', -1, std::nullopt};
  l = adoption_state(1, 1, unknown, true, now);
  REQUIRE(l);
  CHECK(l->iter_start_ns == now);
  CHECK(l->cur_syscall == LS_SYSCALL_NONE);
  ThreadActivity future{'S', 7, now + 1};
  CHECK(adoption_state(1, 1, future, true, now)->iter_start_ns == now);

  // Running: counted from now.
  ThreadActivity running{'R', -1, std::nullopt};
  l = adoption_state(1, 1, running, true, now);
  REQUIRE(l);
  CHECK(l->run_state == LS_RUNNING);
  CHECK(l->iter_start_ns == now);

  // Stopped or zombie: never.
  CHECK_FALSE(adoption_state(1, 1, ThreadActivity{'T', -1, std::nullopt}, true, now));
  CHECK_FALSE(adoption_state(1, 1, ThreadActivity{'Z', 232, std::nullopt}, true, now));
}
