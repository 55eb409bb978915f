#include "loopstall/runner.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "loopstall/clock.hpp"

namespace loopstall {
namespace {

constexpr std::uint64_t kSweepNs = 2'000'000'000ULL;

bool process_exists(std::uint32_t pid) {
  struct stat st {};
  return stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

// Routes one ring buffer record; sizes are checked before any cast.
void dispatch(const void* data, std::size_t size, Engine& eng, Correlator& corr) {
  const auto* hdr = static_cast<const ls_event_hdr*>(data);
  switch (hdr->type) {
    case LS_EV_NEW_PROC:
      if (size >= sizeof(ls_new_proc_event)) eng.set_proc_state(hdr->tgid, corr.classify(hdr->tgid));
      break;
    case LS_EV_STALL:
      if (size >= sizeof(ls_stall_event)) corr.on_stall(*static_cast<const ls_stall_event*>(data));
      break;
    case LS_EV_LOOP_EXIT:
      if (size >= sizeof(ls_stall_event)) corr.on_loop_exit(*static_cast<const ls_stall_event*>(data));
      break;
    default: break;
  }
}

// Decisions whose NEW_PROC event was lost, and processes that are gone.
void sweep(Engine& eng, Correlator& corr) {
  for (std::uint32_t pid : eng.pending_procs()) eng.set_proc_state(pid, corr.classify(pid));
  for (std::uint32_t pid : eng.known_procs()) {
    if (process_exists(pid)) continue;
    eng.forget_proc(pid);
    corr.forget_process(pid);
  }
}

// Decide about every process that exists already, so that loops which are
// blocked in epoll_wait now have their very next iteration measured (a
// process first seen through its NEW_PROC event loses that iteration).
void classify_existing(Engine& eng, Correlator& corr) {
  DIR* d = opendir("/proc");
  if (!d) return;
  while (dirent* de = readdir(d)) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(de->d_name, &end, 10);
    if (!end || *end != '\0' || pid == 0 || pid > UINT32_MAX) continue;
    const ls_proc_state st = corr.classify(static_cast<std::uint32_t>(pid));
    if (st == LS_PROC_WATCH) eng.insert_proc_state(static_cast<std::uint32_t>(pid), st);
  }
  closedir(d);
}

}  // namespace

void run_detector(const RunOptions& opt, Sink& sink, const std::atomic<bool>& stop,
                  const std::function<void(Engine&)>& on_ready) {
  EngineOptions eo;
  eo.threshold_ns = static_cast<std::uint64_t>(opt.threshold_ms * 1e6);
  Engine eng(eo);
  Correlator corr(opt.selection, opt.threshold_ms, sink);
  classify_existing(eng, corr);
  if (on_ready) on_ready(eng);

  const std::uint64_t t0 = monotonic_ns();
  const std::uint64_t scan_ns = static_cast<std::uint64_t>(opt.scan_interval_ms) * 1'000'000ULL;
  const std::uint64_t end_ns = opt.duration_s ? t0 + static_cast<std::uint64_t>(*opt.duration_s * 1e9) : UINT64_MAX;
  std::uint64_t next_scan = t0, next_sweep = t0 + kSweepNs, drops_seen = 0;
  std::vector<ls_loop> loops;
  const Engine::EventHandler handler = [&](const void* d, std::size_t n) { dispatch(d, n, eng, corr); };
  auto account_drops = [&] {
    const std::uint64_t drops = eng.stats().ringbuf_drops;
    corr.add_lost(drops - drops_seen);
    drops_seen = drops;
  };

  while (!stop.load(std::memory_order_relaxed)) {
    std::uint64_t now = monotonic_ns();
    if (now >= end_ns) break;
    const std::uint64_t wake = std::min(next_scan, end_ns);
    const int timeout_ms = wake > now ? static_cast<int>((wake - now + 999'999) / 1'000'000) : 0;
    if (eng.poll(timeout_ms, handler) < 0) continue;  // a signal: re-check stop
    now = monotonic_ns();
    if (now >= next_scan) {
      eng.scan_loops(loops);
      corr.on_scan(loops, monotonic_ns());
      next_scan = now + scan_ns;
    }
    if (now >= next_sweep) {
      sweep(eng, corr);
      account_drops();
      next_sweep = now + kSweepNs;
    }
  }

  // Report what is pending: events already in the ring, stalls in progress.
  eng.poll(0, handler);
  eng.scan_loops(loops);
  corr.flush_ongoing(loops, monotonic_ns());
  account_drops();
  sink.finish(corr.summary(static_cast<double>(monotonic_ns() - t0) / 1e9));
}

}  // namespace loopstall
