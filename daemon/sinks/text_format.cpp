// The text output's lines: stall lines with their culprit frames, and the
// end-of-capture summary table (text_sink.hpp).
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

#include "loopstall/printable.hpp"
#include "loopstall/text_sink.hpp"

namespace loopstall {
namespace {

constexpr std::size_t kTopFrames = 3;          // of the culprit's stack, as py-spy shows them
constexpr double kOtherCulpritShare = 0.2;     // another culprit this large gets a line of its own
constexpr const char* kContinuation = "    ";  // indent of the lines under a stall line

std::string ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, ms >= 100 ? "%.0f ms" : "%.1f ms", ms);
  return buf;
}

// The dominant part of the time first, then the others that took at least a
// tenth of the stall: "blocked 300 ms in read, cpu 60.2 ms". Terse (narrow
// lines): a part alone loses its time, which is the stall's: "blocked in read".
std::string cause_text(const StallReport& r, bool terse) {
  const Breakdown& b = r.breakdown;
  const double cpu = std::max(0.0, b.on_cpu_ms - b.gc_ms);
  struct Part {
    Cause cause;
    double ms;
    const char* name;
  };
  std::vector<Part> parts = {{Cause::Cpu, cpu, "cpu"},
                             {Cause::BlockingSyscall, b.blocked_ms, "blocked"},
                             {Cause::Runqueue, b.runqueue_ms, "runq"},
                             {Cause::Gc, b.gc_ms, "gc"}};
  std::stable_partition(parts.begin(), parts.end(), [&](const Part& p) { return p.cause == r.cause; });
  std::erase_if(parts, [&, first = true](const Part& p) mutable {
    const bool keep = first || (p.ms >= 0.1 * r.duration_ms && p.ms > 0);
    first = false;
    return !keep;
  });
  std::string out;
  for (const Part& p : parts) {
    if (!out.empty()) out += ", ";
    out += p.name;
    if (!terse || parts.size() > 1) out += " " + ms_text(p.ms);
    if (p.cause == Cause::BlockingSyscall && !r.syscalls.empty()) out += " in " + printable(r.syscalls.front().name);
  }
  return out;
}

// Appends items to `line` separated by " < " while they fit in width; the
// rest go on continuation lines. The first goes on `line` however long,
// unless first_may_move: then one that does not fit starts the next line
// (narrow terminals: a culprit cut in two by the terminal is unreadable).
std::string wrap(std::string line, const std::vector<std::string>& items, std::size_t width,
                 bool first_may_move = false) {
  std::string out;
  bool first = true;
  for (const std::string& item : items) {
    const std::string piece = first ? item : " < " + item;
    const bool fits = display_columns(line) + display_columns(piece) <= width;
    if (first && first_may_move && !fits) {
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
      line = std::string(kContinuation) + item;
    } else if (!first && !fits) {
      out += line + "\n";
      line = std::string(kContinuation) + "< " + item;
    } else {
      line += piece;
    }
    first = false;
  }
  return out + line + "\n";
}

std::vector<std::string> python_labels(const PyStack& st) {
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < st.frames.size() && i < kTopFrames; ++i)
    labels.push_back(printable(frame_label(st.frames[i])));
  if (st.frames.size() > kTopFrames) labels.push_back("...");
  return labels;
}

// The C code the loop was in: the innermost native frames outside the
// interpreter ("" when it was in the interpreter itself).
std::vector<std::string> native_labels(const StallReport& r) {
  std::vector<std::string> labels;
  for (const NativeFrame& f : r.native_stack) {
    if (in_interpreter(f, r) || labels.size() == kTopFrames) break;
    labels.push_back(printable(frame_label(f)));
  }
  return labels;
}

// Below kCompactBelow columns (an 80-column terminal, a tmux pane) TID, COMM,
// LOOP and TIME's milliseconds are left out (the summary names each PID) and
// the cause is terse, so that the culprit still shows beside PID and STALL_MS.
bool compact(std::size_t width) {
  return width < kCompactBelow;
}

std::string line_prefix(const StallReport& r, std::size_t width) {
  char when[32] = "";
  const std::time_t secs = static_cast<std::time_t>(r.start_unix_ns / 1'000'000'000LL);
  std::tm tm{};
  if (localtime_r(&secs, &tm)) std::strftime(when, sizeof when, "%H:%M:%S", &tm);
  const int millis = static_cast<int>((r.start_unix_ns / 1'000'000LL) % 1000);
  std::string cause = (r.ongoing ? "ONGOING " : "") + cause_text(r, compact(width));
  char buf[256];
  if (compact(width))
    std::snprintf(buf, sizeof buf, "%s %7u %9.1f ", when, r.pid, r.duration_ms);
  else
    std::snprintf(buf, sizeof buf, "%s.%03d %7u %7u %-15s %-8s %9.1f ", when, millis, r.pid, r.tid,
                  printable(r.comm).c_str(), std::string(to_string(r.loop)).c_str(), r.duration_ms);
  std::string line = buf;
  line += cause;
  const std::size_t cause_cols = compact(width) ? 0 : 24;  // compact: the culprit right after it
  if (display_columns(cause) < cause_cols) line.append(cause_cols - display_columns(cause), ' ');
  return line + " ";
}

}  // namespace

std::string stall_header(std::size_t width) {
  char buf[128];
  if (compact(width))
    std::snprintf(buf, sizeof buf, "%-8s %7s %9s %s", "TIME", "PID", "STALL_MS", "CAUSE CULPRIT");
  else
    std::snprintf(buf, sizeof buf, "%-12s %7s %7s %-15s %-8s %9s %-24s %s", "TIME", "PID", "TID", "COMM", "LOOP",
                  "STALL_MS", "CAUSE", "CULPRIT");
  return buf;
}

namespace {

// first_may_move: see wrap(); never for a status line, which is one line.
std::string stall_lines(const StallReport& r, std::size_t width, bool first_may_move) {
  const auto shares = culprit_shares(r);
  const CulpritShare& top = shares.front();
  std::string out =
      wrap(line_prefix(r, width), top.stack ? python_labels(*top.stack) : std::vector{printable(top.name)}, width,
           first_may_move);
  // A stall that mixed 191 ms of one function with 300 ms of another shows both.
  for (std::size_t i = 1; i < shares.size(); ++i) {
    if (!shares[i].stack || shares[i].ms < kOtherCulpritShare * r.duration_ms) continue;
    out += wrap(std::string(kContinuation) + "+ " + ms_text(shares[i].ms) + " in ", python_labels(*shares[i].stack),
                width);
  }
  if (const auto native = native_labels(r); top.stack && !native.empty())
    out += wrap(std::string(kContinuation) + "in C: ", native, width);
  // A summary of coalesced repeats (--coalesce): the line above is the longest.
  if (const auto& c = r.coalesced) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s= %llu stalls like this in %.0f s: %s in all, longest %s\n", kContinuation,
                  static_cast<unsigned long long>(c->count), c->window_s, ms_text(c->total_ms).c_str(),
                  ms_text(c->max_ms).c_str());
    out += buf;
  }
  return out;
}

}  // namespace

std::string format_stall(const StallReport& r, std::size_t width) {
  return stall_lines(r, width, compact(width));
}

std::string format_stall_line(const StallReport& r, std::size_t width) {
  const std::string lines = stall_lines(r, width, false);
  return lines.substr(0, lines.find('\n'));
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
  char buf[512];
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
  // CULPRIT last: free text, as the last column of bcc's tools.
  std::snprintf(buf, sizeof buf, "%7s %-15s %-8s %10s %8s %8s %5s %8s %6s %6s %8s %10s %-20s %s\n", "PID", "COMM",
                "LOOP", "ITERATIONS", "P50_MS<=", "P99_MS<=", "BUSY%", "READS/IT", "B/READ", "STALLS", "MAX_MS",
                "STALLED_MS", "SERVICE", "CULPRIT");
  out += buf;
  for (const auto& [pid, t] : s.processes) {
    // Utilisation: time inside iterations over the capture's wall time, per loop thread.
    const double wall_ns = s.elapsed_s * 1e9 * std::max<std::uint32_t>(t.loop_threads, 1);
    const double busy =
        wall_ns > 0
            ? std::min(1.0, static_cast<double>(t.busy_on_cpu_ns + t.busy_blocked_ns + t.busy_runq_ns) / wall_ns)
            : 0;
    char reads_per_it[16] = "-", bytes_per_read[16] = "-";
    if (t.iterations)
      std::snprintf(reads_per_it, sizeof reads_per_it, "%.1f",
                    static_cast<double>(t.reads) / static_cast<double>(t.iterations));
    if (t.reads)
      std::snprintf(bytes_per_read, sizeof bytes_per_read, "%.0f",
                    static_cast<double>(t.read_bytes) / static_cast<double>(t.reads));
    const std::string culprit = t.top_culprit();
    std::snprintf(buf, sizeof buf, "%7u %-15s %-8s %10llu %8.3f %8.3f %5.1f %8s %6s %6llu %8.1f %10.1f %-20s ", pid,
                  printable(t.comm).c_str(), std::string(to_string(t.loop)).c_str(),
                  static_cast<unsigned long long>(t.iterations), hist_quantile_ms(t.hist, 0.5),
                  hist_quantile_ms(t.hist, 0.99), busy * 100, reads_per_it, bytes_per_read,
                  static_cast<unsigned long long>(t.stalls + t.in_progress),
                  std::max(t.max_stall_ms, t.in_progress_max_ms), t.stalled_ms + t.in_progress_ms,
                  printable(t.service.empty() ? "-" : t.service).c_str());
    out += buf;
    out += culprit.empty() ? "-" : printable(culprit);
    out += '\n';
  }
  return out;
}

}  // namespace loopstall
