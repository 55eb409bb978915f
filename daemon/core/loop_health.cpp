// Loop health rows for `loopstall top`: Summary <-> JSON for the control
// socket, rates between snapshots, sorting and the table.
#include "loopstall/loop_health.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "loopstall/printable.hpp"

namespace loopstall {

using nlohmann::json;

namespace {

std::optional<LoopKind> loop_kind_named(std::string_view n) {
  for (LoopKind k : kLoopKinds)
    if (to_string(k) == n) return k;
  return std::nullopt;
}

std::optional<Cause> cause_named(std::string_view n) {
  for (Cause c : {Cause::Cpu, Cause::BlockingSyscall, Cause::Runqueue, Cause::Gc})
    if (to_string(c) == n) return c;
  return std::nullopt;
}

template <typename T>
T get(const json& j, const char* key) {
  if (!j.contains(key)) throw std::invalid_argument(std::string("missing ") + key);
  return j.at(key).get<T>();  // json::type_error is an invalid_argument too (see summary_from_json)
}

double ratio(double num, double den) {
  return den > 0 ? num / den : 0;
}

}  // namespace

json summary_to_json(const Summary& s) {
  json procs = json::array();
  for (const auto& [pid, t] : s.processes) {
    json p = {{"pid", pid},
              {"comm", t.comm},
              {"service", t.service.empty() ? t.comm : t.service},
              {"loop", to_string(t.loop)},
              {"loop_threads", t.loop_threads},
              {"iterations", t.iterations},
              {"hist_log2_us", t.hist},
              {"busy_on_cpu_ns", t.busy_on_cpu_ns},
              {"busy_blocked_ns", t.busy_blocked_ns},
              {"busy_runq_ns", t.busy_runq_ns},
              {"reads", t.reads},
              {"read_bytes", t.read_bytes},
              {"stalls", t.stalls},
              {"stalled_ms", t.stalled_ms},
              {"max_stall_ms", t.max_stall_ms}};
    if (t.ongoing)
      p["ongoing"] = {{"start_unix_ns", t.ongoing->start_unix_ns},
                      {"duration_ms", t.ongoing->duration_ms},
                      {"cause", to_string(t.ongoing->cause)},
                      {"culprit", t.ongoing->culprit}};
    procs.push_back(std::move(p));
  }
  // Names come from other processes: invalid UTF-8 must not make dump() throw.
  return {{"elapsed_s", s.elapsed_s}, {"lost_events", s.lost_events}, {"processes", std::move(procs)}};
}

Summary summary_from_json(const json& j) {
  try {
    Summary s;
    s.elapsed_s = get<double>(j, "elapsed_s");
    s.lost_events = get<std::uint64_t>(j, "lost_events");
    for (const json& p : j.at("processes")) {
      ProcessTotals t;
      const auto pid = get<std::uint32_t>(p, "pid");
      t.comm = get<std::string>(p, "comm");
      t.service = get<std::string>(p, "service");
      const auto kind = loop_kind_named(get<std::string>(p, "loop"));
      if (!kind) throw std::invalid_argument("unknown loop kind");
      t.loop = *kind;
      t.loop_threads = get<std::uint32_t>(p, "loop_threads");
      t.iterations = get<std::uint64_t>(p, "iterations");
      const auto hist = get<std::vector<std::uint64_t>>(p, "hist_log2_us");
      if (hist.size() != t.hist.size()) throw std::invalid_argument("histogram size");
      std::copy(hist.begin(), hist.end(), t.hist.begin());
      t.busy_on_cpu_ns = get<std::uint64_t>(p, "busy_on_cpu_ns");
      t.busy_blocked_ns = get<std::uint64_t>(p, "busy_blocked_ns");
      t.busy_runq_ns = get<std::uint64_t>(p, "busy_runq_ns");
      t.reads = get<std::uint64_t>(p, "reads");
      t.read_bytes = get<std::uint64_t>(p, "read_bytes");
      t.stalls = get<std::uint64_t>(p, "stalls");
      t.stalled_ms = get<double>(p, "stalled_ms");
      t.max_stall_ms = get<double>(p, "max_stall_ms");
      if (p.contains("ongoing")) {
        const json& o = p.at("ongoing");
        const auto cause = cause_named(get<std::string>(o, "cause"));
        if (!cause) throw std::invalid_argument("unknown cause");
        t.ongoing = OngoingStall{get<std::int64_t>(o, "start_unix_ns"), get<double>(o, "duration_ms"), *cause,
                                 get<std::string>(o, "culprit")};
      }
      s.processes[pid] = std::move(t);
    }
    return s;
  } catch (const json::exception& e) {
    throw std::invalid_argument(e.what());
  }
}

std::optional<TopSort> parse_top_sort(std::string_view name) {
  for (TopSort s :
       {TopSort::Utilisation, TopSort::Iterations, TopSort::P99, TopSort::Stalls, TopSort::Churn, TopSort::Pid})
    if (to_string(s) == name) return s;
  return std::nullopt;
}

std::string_view to_string(TopSort s) {
  switch (s) {
    case TopSort::Utilisation: return "util";
    case TopSort::Iterations: return "iter";
    case TopSort::P99: return "p99";
    case TopSort::Stalls: return "stalls";
    case TopSort::Churn: return "churn";
    case TopSort::Pid: return "pid";
  }
  return "util";
}

TopSort next_sort(TopSort s) {
  return s == TopSort::Pid ? TopSort::Utilisation : static_cast<TopSort>(static_cast<int>(s) + 1);
}

std::vector<LoopRow> LoopRates::update(const Summary& s, double now_s) {
  std::vector<LoopRow> rows;
  std::map<std::uint32_t, Seen> next;
  for (const auto& [pid, t] : s.processes) {
    LoopRow r;
    r.pid = pid;
    r.service = t.service.empty() ? t.comm : t.service;
    r.loop = t.loop;
    r.ongoing = t.ongoing;
    Seen& now = next[pid];
    now.totals = t;
    now.at_s = now_s;
    auto before = seen_.find(pid);
    // A pid seen for the first time (or reused: counters went back) has no
    // rates yet; its row still shows what it is and any ongoing stall.
    if (before != seen_.end() && before->second.totals.iterations <= t.iterations &&
        before->second.totals.stalls <= t.stalls) {
      const ProcessTotals& b = before->second.totals;
      const double dt = now_s - before->second.at_s;
      const double threads = std::max<std::uint32_t>(t.loop_threads, 1);
      const double wall_ns = dt * 1e9 * threads;
      const std::uint64_t iters = t.iterations - b.iterations;
      r.iterations_per_s = ratio(static_cast<double>(iters), dt);
      r.on_cpu = ratio(static_cast<double>(t.busy_on_cpu_ns - b.busy_on_cpu_ns), wall_ns);
      r.blocked = ratio(static_cast<double>(t.busy_blocked_ns - b.busy_blocked_ns), wall_ns);
      r.runqueue = ratio(static_cast<double>(t.busy_runq_ns - b.busy_runq_ns), wall_ns);
      // A long iteration is added when it ends: its share can exceed one
      // interval's wall time. Shown as 100 %, split in its proportions.
      const double sum = r.on_cpu + r.blocked + r.runqueue;
      if (sum > 1) r.on_cpu /= sum, r.blocked /= sum, r.runqueue /= sum;
      r.utilisation = std::min(1.0, sum);
      const std::uint64_t reads = t.reads - b.reads;
      if (iters) {
        IterationHist h{};
        for (std::size_t i = 0; i < h.size(); ++i) h[i] = t.hist[i] - std::min(t.hist[i], b.hist[i]);
        r.p99_ms = hist_quantile_ms(h, 0.99);
        r.reads_per_iteration = static_cast<double>(reads) / static_cast<double>(iters);
      }
      r.reads_per_s = ratio(static_cast<double>(reads), dt);
      if (reads) r.bytes_per_read = static_cast<double>(t.read_bytes - b.read_bytes) / static_cast<double>(reads);
      now.stalls = std::move(before->second.stalls);
    }
    now.stalls.emplace_back(now_s, t.stalls + (t.ongoing ? 1 : 0));
    while (now.stalls.size() > 1 && now.stalls.front().first < now_s - 60) now.stalls.pop_front();
    const double window = now_s - now.stalls.front().first;
    if (window > 0)
      r.stalls_per_min = static_cast<double>(now.stalls.back().second -
                                             std::min(now.stalls.back().second, now.stalls.front().second)) *
                         60 / std::max(window, 1.0);
    rows.push_back(std::move(r));
  }
  seen_ = std::move(next);  // processes gone from the summary are forgotten
  return rows;
}

void sort_rows(std::vector<LoopRow>& rows, TopSort by) {
  auto key = [by](const LoopRow& r) -> double {
    switch (by) {
      case TopSort::Utilisation: return r.utilisation;
      case TopSort::Iterations: return r.iterations_per_s;
      case TopSort::P99: return r.p99_ms.value_or(0);
      case TopSort::Stalls: return r.stalls_per_min + (r.ongoing ? 1e9 : 0);
      case TopSort::Churn: return r.reads_per_s / std::max(r.bytes_per_read.value_or(1e9), 1.0);
      case TopSort::Pid: return -static_cast<double>(r.pid);
    }
    return 0;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const LoopRow& a, const LoopRow& b) {
    const double ka = key(a), kb = key(b);
    return ka != kb ? ka > kb : a.pid < b.pid;
  });
}

std::vector<std::string> format_rows(const std::vector<LoopRow>& rows, TopSort by, int width) {
  std::vector<std::string> out;
  char buf[512];
  auto opt = [](const std::optional<double>& v, const char* fmt) {
    char b[32];
    if (!v) return std::string("-");
    std::snprintf(b, sizeof b, fmt, *v);
    return std::string(b);
  };
  std::snprintf(buf, sizeof buf, "%7s %-18s %-8s %9s %6s %5s %5s %5s %9s %8s %8s %8s  %s", "PID", "SERVICE", "LOOP",
                "ITER/S", "UTIL%", "CPU%", "BLK%", "RUNQ%", "P99_MS<=", "STALL/M", "READS/IT", "B/READ",
                "NOW (sorted by ");
  out.push_back(std::string(buf) + std::string(to_string(by)) + ")");
  for (const LoopRow& r : rows) {
    std::string now;
    if (r.ongoing) {
      char b[64];
      std::snprintf(b, sizeof b, "STALLED %.1fs: ", r.ongoing->duration_ms / 1e3);
      now = b + printable(r.ongoing->culprit);
    } else if (r.churning()) {
      char b[96];
      std::snprintf(b, sizeof b, "CHURN: %.0f reads/s of %.0f B", r.reads_per_s, r.bytes_per_read.value_or(0));
      now = b;
    } else if (r.utilisation >= LoopRow::kSaturated) {
      now = "SATURATED";
    }
    std::snprintf(buf, sizeof buf, "%7u %-18.18s %-8s %9.0f %6.1f %5.1f %5.1f %5.1f %9s %8.1f %8s %8s  %s", r.pid,
                  printable(r.service).c_str(), std::string(to_string(r.loop)).c_str(), r.iterations_per_s,
                  r.utilisation * 100, r.on_cpu * 100, r.blocked * 100, r.runqueue * 100, opt(r.p99_ms, "%.3f").c_str(),
                  r.stalls_per_min, opt(r.reads_per_iteration, "%.1f").c_str(), opt(r.bytes_per_read, "%.0f").c_str(),
                  now.c_str());
    out.emplace_back(buf);
  }
  for (std::string& line : out)
    if (width > 0 && static_cast<int>(line.size()) > width) line.resize(static_cast<std::size_t>(width));
  return out;
}

}  // namespace loopstall
