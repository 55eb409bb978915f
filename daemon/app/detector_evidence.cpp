// Stall evidence the Detector gathers once for every consumer: on-CPU
// samples, stacks of blocked loop threads, interpreters shutting down.
#include <algorithm>
#include <cstddef>

#include "loopstall/clock.hpp"
#include "loopstall/detector.hpp"

namespace loopstall {

// A loop in a long iteration whose interpreter began Py_Finalize is tearing
// down, not stalling: tell the correlators before they report it.
void Detector::check_exiting(std::uint64_t now_ns) {
  const std::uint64_t after_ns = evidence_after_ns();
  for (const ls_loop& l : loops_) {
    if (!Tuning::iteration_older(l.iter_start_ns, now_ns, after_ns)) continue;
    bool ask = false;
    for (const Correlator* c : consumers_) ask |= c->watches(l.tgid) && !c->exiting(l.tgid);
    if (!ask || !stacks_->interpreter_finalizing(l.tgid)) continue;
    for (Correlator* c : consumers_) c->interpreter_exiting(l.tgid);
  }
}

void Detector::on_sample(const ls_sample_event& e, std::size_t size) {
  // Variable length: the stack bytes must be inside the record.
  if (e.stack_len > sizeof e.stack || size < offsetof(ls_sample_event, stack) + e.stack_len) return;
  if (!watched(e.hdr.tgid)) return;
  // A budget: a host where every loop stalls at once must not turn the
  // daemon into the biggest CPU user. First and longest stalls come first.
  const std::uint64_t now = monotonic_ns();
  const StackBudget::Skip why = budget_.judge(e.hdr.tid, now > e.iter_start_ns ? now - e.iter_start_ns : 0, now);
  if (why != StackBudget::Skip::None) {
    budget_.skipped(why, StackBudget::Evidence::Sample);
    return;
  }
  budget_.read();
  // Unwinding is the slow part of a poll: a backlog of samples must not
  // delay the scan that reports hung loops.
  scan_if_due();
  auto s = stacks_->on_cpu(e);
  if (!s) return;
  // Without frames from BPF the Python stack is read from memory now, after
  // the sample: if the iteration is over by then (a backlog, a slow read) it
  // is whatever runs next -- gevent's Hub.run, not the hog. Keep it only if
  // the sampled iteration is still the loop's current one.
  if (e.py_status != LS_PY_OK && !s->python.empty()) {
    const auto now_loop = engine_->find_loop(e.hdr.tid);
    if (!now_loop || now_loop->iter_start_ns != e.iter_start_ns) s->python.clear();
    if (s->empty()) return;
  }
  name_framework(e.hdr.tgid, s->python);
  share(*s, [&](Correlator& c, StackSample v) { c.on_sample(e.hdr.tgid, e.hdr.tid, e.iter_start_ns, std::move(v)); });
}

// Loop threads blocked inside a long iteration: their stack is the one
// that made the blocking call, and it cannot change while they sleep, so
// reading it from /proc now is exact. Each block episode (the iteration's
// last run-state change) is captured once; later scans extend it.
void Detector::capture_blocks(std::uint64_t now_ns) {
  const std::uint64_t after_ns = evidence_after_ns();
  for (const ls_loop& l : loops_) {
    if (l.run_state != LS_BLOCKED || now_ns < l.last_ts_ns ||
        !Tuning::iteration_older(l.iter_start_ns, now_ns, after_ns) || !watched(l.tgid))
      continue;
    BlockSeen& b = blocks_[l.tid];
    const bool same = b.iter_start_ns == l.iter_start_ns && b.block_start_ns == l.last_ts_ns;
    std::optional<StackSample> s;
    if (!same || !b.captured) {
      // Judged again at each scan: a repeat that outlasts the loop's longest is read.
      const StackBudget::Skip why = budget_.judge(l.tid, now_ns - l.iter_start_ns, now_ns);
      if (why != StackBudget::Skip::None) {
        if (!same || !b.skip_counted) budget_.skipped(why, StackBudget::Evidence::Blocked);
        b = {l.iter_start_ns, l.last_ts_ns, false, true};
      } else {
        budget_.read();
        s = stacks_->blocked(l.tgid, l.tid);
        if (s) name_framework(l.tgid, s->python);
        // Only if the thread slept through all the reads: the same episode
        // still going on afterwards. (It may have woken and gone back to
        // sleep elsewhere -- in epoll_wait, say -- since the scan.)
        const auto after = engine_->find_loop(l.tid);
        if (!after || after->iter_start_ns != l.iter_start_ns || after->last_ts_ns != l.last_ts_ns ||
            after->run_state != LS_BLOCKED)
          s.reset();
        b = {l.iter_start_ns, l.last_ts_ns, s.has_value()};
      }
    }
    share(s, [&](Correlator& c, std::optional<StackSample> v) {
      c.on_block(l.tgid, l.tid, l.iter_start_ns, l.last_ts_ns, now_ns - l.last_ts_ns, std::move(v));
    });
  }
}

}  // namespace loopstall
