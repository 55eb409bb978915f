#include "loopstall/text_sink.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "loopstall/printable.hpp"

namespace loopstall {

std::string format_stall_line(const StallReport& r) {
  char when[32] = "";
  const std::time_t secs = static_cast<std::time_t>(r.start_unix_ns / 1'000'000'000LL);
  std::tm tm{};
  if (localtime_r(&secs, &tm)) std::strftime(when, sizeof when, "%H:%M:%S", &tm);
  const int millis = static_cast<int>((r.start_unix_ns / 1'000'000LL) % 1000);

  // Every string from the process (comm, service, code names) goes through
  // printable(): a comm like "\x1b]0;..." must not drive the reader's terminal.
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s.%03d %s pid=%u tid=%u %s [%s%s%s] %.1f ms %s: cpu %.1f, blocked %.1f, runqueue %.1f, gc %.1f ms",
                when, millis, r.ongoing ? "STALLING" : "STALL   ", r.pid, r.tid, printable(r.comm).c_str(),
                std::string(to_string(r.loop)).c_str(), r.python_version ? " " : "",
                r.python_version ? r.python_version->c_str() : "", r.duration_ms,
                std::string(to_string(r.cause)).c_str(), r.breakdown.on_cpu_ms, r.breakdown.blocked_ms,
                r.breakdown.runqueue_ms, r.breakdown.gc_ms);
  std::string line = buf;
  if (!r.syscalls.empty()) {
    line += " | in";
    for (std::size_t i = 0; i < r.syscalls.size() && i < 3; ++i) {
      std::snprintf(buf, sizeof buf, " %s %.1f ms x%llu", r.syscalls[i].name.c_str(), r.syscalls[i].ms,
                    static_cast<unsigned long long>(r.syscalls[i].count));
      line += buf;
    }
  }
  // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false
  // positive, PR105651) on "literal" + std::string temporaries.
  if (!r.service.empty()) {
    line += " | service ";
    line += printable(r.service);
  }
  if (!r.python_stacks.empty() && !r.python_stacks.front().frames.empty()) {
    const auto& f = r.python_stacks.front().frames.front();
    line += " | at ";
    line += printable(f.function);
    line += " (";
    line += printable(f.file);
    if (f.line) {
      line += ':';
      line += std::to_string(*f.line);
    }
    line += ')';
  }
  return line;
}

double hist_quantile_ms(const IterationHist& hist, double q) {
  std::uint64_t total = 0;
  for (auto n : hist) total += n;
  if (!total) return 0;
  const double want = q * static_cast<double>(total);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < hist.size(); ++i) {
    seen += hist[i];
    if (static_cast<double>(seen) >= want && hist[i]) return hist_bucket_upper_s(i) * 1e3;
  }
  return hist_bucket_upper_s(hist.size() - 1) * 1e3;
}

std::string format_summary(const Summary& s) {
  std::string out;
  char buf[256];
  std::uint64_t stalls = 0, in_progress = 0;
  for (const auto& [pid, t] : s.processes) stalls += t.stalls + t.in_progress, in_progress += t.in_progress;
  std::snprintf(buf, sizeof buf, "--- summary: %.1f s, %llu stall(s)", s.elapsed_s,
                static_cast<unsigned long long>(stalls));
  out += buf;
  // A loop hung when the capture ended is the headline, not a footnote.
  if (in_progress) {
    std::snprintf(buf, sizeof buf, " (%llu still in progress)", static_cast<unsigned long long>(in_progress));
    out += buf;
  }
  std::snprintf(buf, sizeof buf, " in %zu process(es), %llu event(s) lost\n", s.processes.size(),
                static_cast<unsigned long long>(s.lost_events));
  out += buf;
  if (s.processes.empty()) return out;
  std::snprintf(buf, sizeof buf, "%8s %-16s %-8s %12s %9s %9s %7s %10s %12s\n", "PID", "COMM", "LOOP", "ITERATIONS",
                "P50_MS<=", "P99_MS<=", "STALLS", "MAX_MS", "STALLED_MS");
  out += buf;
  for (const auto& [pid, t] : s.processes) {
    std::snprintf(buf, sizeof buf, "%8u %-16s %-8s %12llu %9.3f %9.3f %7llu %10.1f %12.1f\n", pid,
                  printable(t.comm).c_str(), std::string(to_string(t.loop)).c_str(),
                  static_cast<unsigned long long>(t.iterations), hist_quantile_ms(t.hist, 0.5),
                  hist_quantile_ms(t.hist, 0.99), static_cast<unsigned long long>(t.stalls + t.in_progress),
                  std::max(t.max_stall_ms, t.in_progress_max_ms), t.stalled_ms + t.in_progress_ms);
    out += buf;
  }
  return out;
}

void TextSink::stall(const StallReport& r) {
  out_(format_stall_line(r) + "\n");
}

void TextSink::finish(const Summary& s) {
  out_(format_summary(s));
}

}  // namespace loopstall
