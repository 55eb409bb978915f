#include "loopstall/decode.hpp"

#include <algorithm>
#include <cstdio>

#include "loopstall/syscalls.hpp"

namespace loopstall {
namespace {

constexpr double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace

IterationTiming decode_iteration(const ls_loop& l, std::uint64_t end_ns, bool ongoing) {
  IterationTiming t;
  std::uint64_t on_cpu = l.on_cpu_ns, blocked = l.blocked_ns, runq = l.runq_ns;
  // Clamp: a snapshot may be a little older than end_ns, or torn.
  const std::uint64_t end = std::max<std::uint64_t>(end_ns, l.iter_start_ns);
  std::uint64_t pending = 0;
  if (ongoing && end > l.last_ts_ns && l.last_ts_ns >= l.iter_start_ns) pending = end - l.last_ts_ns;

  std::vector<SyscallTime> sc;
  const std::uint32_t n = std::min<std::uint32_t>(l.nsyscalls, LS_MAX_SYSCALLS);
  for (std::uint32_t i = 0; i < n; ++i)
    sc.push_back({l.syscalls[i].nr, syscall_name(l.syscalls[i].nr), ms(l.syscalls[i].ns), l.syscalls[i].count});
  const auto& other = l.syscalls[LS_MAX_SYSCALLS];
  if (other.count > 0) sc.push_back({LS_SYSCALL_OTHER, syscall_name(LS_SYSCALL_OTHER), ms(other.ns), other.count});

  if (pending) {
    switch (l.run_state) {
      case LS_BLOCKED: {
        blocked += pending;
        auto it = std::find_if(sc.begin(), sc.end(), [&](const SyscallTime& s) { return s.nr == l.cur_syscall; });
        if (it == sc.end()) {
          sc.push_back({l.cur_syscall, syscall_name(l.cur_syscall), ms(pending), 1});
        } else {
          it->ms += ms(pending);
          it->count += 1;
        }
        break;
      }
      case LS_RUNNABLE: runq += pending; break;
      default: on_cpu += pending; break;
    }
  }
  std::stable_sort(sc.begin(), sc.end(), [](const SyscallTime& a, const SyscallTime& b) { return a.ms > b.ms; });

  t.duration_ms = ms(end - l.iter_start_ns);
  t.breakdown.on_cpu_ms = ms(on_cpu);
  t.breakdown.blocked_ms = ms(blocked);
  t.breakdown.runqueue_ms = ms(runq);
  t.breakdown.gc_ms = std::min(ms(l.gc_ns), t.breakdown.on_cpu_ms);
  t.syscalls = std::move(sc);
  return t;
}

std::string make_stall_id(std::uint32_t tid, std::uint64_t iter_start_ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%u-%llx", tid, static_cast<unsigned long long>(iter_start_ns));
  return buf;
}

}  // namespace loopstall
