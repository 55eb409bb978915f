// Threads in /proc (procfs.hpp): what a thread is doing now, and its ids in
// the PID namespaces it lives in; the small per-task files (stat, status,
// syscall) of a process too.
#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "loopstall/clock.hpp"
#include "loopstall/procfs.hpp"

namespace loopstall {
namespace {

// The per-thread /proc files read here are short (status ~1.5 KiB, sched ~2 KiB).
constexpr std::size_t kMaxThreadFileBytes = 16384;

std::string thread_dir(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  return proc_root + "/" + std::to_string(pid) + "/task/" + std::to_string(tid);
}

std::optional<std::string> read_small(const std::string& path) {
  return read_file_prefix(path, kMaxThreadFileBytes);
}

// The line of `text` that starts with `key`, without the key.
std::optional<std::string_view> line_after(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    if (line.starts_with(key)) return line.substr(key.size());
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return std::nullopt;
}

// CLOCK_MONOTONIC minus the task clock of `cpu`'s runqueue (exec_start's
// clock: it leaves out IRQ and steal time, so each CPU's runs apart from
// the others). Measured on our own thread moved to that CPU for a moment:
// the switch-in sets its exec_start to that clock's now.
std::optional<std::int64_t> sched_clock_offset_ns(int cpu, const std::string& proc_root) {
  cpu_set_t old, one;
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof old, &old) != 0) return std::nullopt;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return std::nullopt;
  sched_yield();
  const std::uint64_t mono = monotonic_ns();
  auto self = read_small(proc_root + "/thread-self/sched");
  sched_setaffinity(0, sizeof old, &old);
  if (!self) return std::nullopt;
  const auto ms = parse_exec_start_ms(*self);
  if (!ms) return std::nullopt;
  return static_cast<std::int64_t>(mono) - static_cast<std::int64_t>(*ms * 1e6);
}

// The NSpid ids of one thread; {tid} when the kernel has no NSpid line; empty when gone.
std::vector<std::uint32_t> namespace_ids(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  const auto status = read_small(thread_dir(pid, tid, proc_root) + "/status");
  if (!status || status->empty()) return {};
  auto ids = parse_nspid(*status);
  // No NSpid line (kernel before 4.1), or one whose first id is not the one /proc names the thread by: one
  // namespace as far as we can tell.
  if (ids.empty() || ids.front() != tid) return {tid};
  return ids;
}

}  // namespace

std::optional<std::string_view> stat_field(std::string_view stat, int n) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || n < 3) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  for (int field = 3;; ++field) {
    const auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(start);
    const auto end = std::min(rest.find_first_of(" \n"), rest.size());
    if (field == n) return rest.substr(0, end);
    rest.remove_prefix(end);
  }
}

char parse_stat_state(std::string_view stat) {
  const auto f = stat_field(stat, 3);
  return f && f->size() == 1 ? f->front() : '?';
}

std::optional<std::uint32_t> parse_stat_ppid(std::string_view stat) {
  const auto f = stat_field(stat, 4);
  std::uint32_t ppid = 0;
  if (!f || std::from_chars(f->data(), f->data() + f->size(), ppid).ec != std::errc()) return std::nullopt;
  return ppid;
}

int parse_stat_cpu(std::string_view stat) {
  const auto f = stat_field(stat, 39);
  int cpu = -1;
  if (!f || std::from_chars(f->data(), f->data() + f->size(), cpu).ec != std::errc()) return -1;
  return cpu;
}

int parse_syscall_nr(std::string_view text) {
  // "232 0x3 ...": in a syscall; "-1 sp pc": blocked outside one; "running".
  int nr = -1;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), nr);
  return r.ec == std::errc() && nr >= 0 ? nr : -1;
}

std::optional<ThreadSyscall> parse_syscall_file(std::string_view text) {
  // "nr a0 .. a5 sp pc" in a syscall, "-1 sp pc" when blocked elsewhere.
  ThreadSyscall s;
  auto r = std::from_chars(text.data(), text.data() + text.size(), s.nr);
  if (r.ec != std::errc() || s.nr < -1) return std::nullopt;
  std::uint64_t v[8] = {};
  const int want = s.nr == -1 ? 2 : 8;
  for (int i = 0; i < want; ++i) {
    const char* p = r.ptr;
    const char* end = text.data() + text.size();
    if (p == end || *p != ' ') return std::nullopt;
    ++p;
    if (end - p > 2 && p[0] == '0' && p[1] == 'x') p += 2;
    r = std::from_chars(p, end, v[i], 16);
    if (r.ec != std::errc()) return std::nullopt;
  }
  if (s.nr == -1) {
    s.sp = v[0];
    s.pc = v[1];
  } else {
    for (int i = 0; i < 6; ++i) s.args[i] = v[i];
    s.sp = v[6];
    s.pc = v[7];
  }
  // Kernel threads have no user context.
  if (s.sp == 0 || s.pc == 0) return std::nullopt;
  return s;
}

std::optional<std::string> read_stat(std::uint32_t pid, const std::string& proc_root) {
  return read_small(proc_root + "/" + std::to_string(pid) + "/stat");
}

std::optional<std::uint64_t> parse_exec_mapped_kb(std::string_view status) {
  std::uint64_t total = 0;
  for (const std::string_view key : {"VmExe:", "VmLib:"}) {
    auto v = line_after(status, key);
    if (!v) return std::nullopt;
    while (!v->empty() && (v->front() == ' ' || v->front() == '\t')) v->remove_prefix(1);
    std::uint64_t kb = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), kb);
    if (ec != std::errc() || std::string_view(end, v->data() + v->size()) != " kB") return std::nullopt;
    total += kb;
  }
  return total;
}

std::optional<std::uint64_t> read_exec_mapped_kb(std::uint32_t pid, const std::string& proc_root) {
  const auto text = read_small(proc_root + "/" + std::to_string(pid) + "/status");
  if (!text) return std::nullopt;
  return parse_exec_mapped_kb(*text);
}

std::optional<ThreadSyscall> read_thread_syscall(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  const auto text = read_small(thread_dir(pid, tid, proc_root) + "/syscall");
  if (!text) return std::nullopt;
  return parse_syscall_file(*text);
}

std::optional<double> parse_exec_start_ms(std::string_view text) {
  const auto line = line_after(text, "se.exec_start");
  if (!line) return std::nullopt;
  const auto colon = line->find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string num(line->substr(colon + 1));
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (end == num.c_str() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

std::optional<ThreadActivity> thread_activity(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  const std::string dir = thread_dir(pid, tid, proc_root);
  const auto stat = read_small(dir + "/stat");
  if (!stat) return std::nullopt;
  ThreadActivity a;
  a.state = parse_stat_state(*stat);
  if (auto sc = read_small(dir + "/syscall")) a.syscall = parse_syscall_nr(*sc);
  // Only a sleeping thread's exec_start says when it last ran.
  if (a.state != 'S' && a.state != 'D') return a;
  if (auto sched = read_small(dir + "/sched")) {
    const auto ms = parse_exec_start_ms(*sched);
    const auto off = sched_clock_offset_ns(parse_stat_cpu(*stat), proc_root);
    if (ms && off) {
      const std::int64_t t = static_cast<std::int64_t>(*ms * 1e6) + *off;
      if (t > 0 && static_cast<std::uint64_t>(t) <= monotonic_ns()) a.last_ran_ns = static_cast<std::uint64_t>(t);
    }
  }
  return a;
}

std::vector<std::uint32_t> parse_nspid(std::string_view text) {
  auto line = line_after(text, "NSpid:");
  if (!line) return {};
  std::vector<std::uint32_t> ids;
  while (true) {
    const auto start = line->find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    line->remove_prefix(start);
    std::uint32_t id = 0;
    const auto [end, ec] = std::from_chars(line->data(), line->data() + line->size(), id);
    // Ids are positive and separated by blanks; anything else is not a line the kernel wrote.
    if (ec != std::errc() || id == 0 || (end != line->data() + line->size() && *end != ' ' && *end != '\t')) return {};
    ids.push_back(id);
    line->remove_prefix(static_cast<std::size_t>(end - line->data()));
  }
  return ids;
}

std::optional<std::uint32_t> innermost_tid(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root) {
  const auto ids = namespace_ids(pid, tid, proc_root);
  if (ids.empty()) return std::nullopt;
  return ids.back();
}

bool in_child_pid_namespace(std::uint32_t pid, const std::string& proc_root) {
  return namespace_ids(pid, pid, proc_root).size() > 1;
}

std::map<std::uint32_t, std::uint32_t> innermost_tids(std::uint32_t pid, const std::string& proc_root) {
  std::map<std::uint32_t, std::uint32_t> out;
  for (const std::uint32_t tid : task_ids(pid, proc_root))
    if (const auto inner = innermost_tid(pid, tid, proc_root)) out.emplace(tid, *inner);
  return out;
}

}  // namespace loopstall
