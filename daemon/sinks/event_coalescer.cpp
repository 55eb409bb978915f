#include "loopstall/event_coalescer.hpp"

#include <algorithm>

#include "loopstall/clock.hpp"

namespace loopstall {
namespace {

std::uint64_t loop_key(const StallReport& r) {
  return static_cast<std::uint64_t>(r.pid) << 32 | r.tid;
}

std::uint64_t ms_to_ns(double ms) {
  return ms > 0 ? static_cast<std::uint64_t>(ms * 1e6) : 0;
}

}  // namespace

std::string culprit_site(const StallReport& r) {
  // Prefixed so that a Python function and a native symbol never compare equal.
  if (!r.python_stacks.empty() && !r.python_stacks[0].frames.empty()) {
    const PyFrame& f = r.python_stacks[0].frames[0];
    return "py:" + f.function + '\0' + f.file;
  }
  if (!r.native_stack.empty()) return "native:" + r.native_stack[0].symbol;
  return "";
}

StackBudget::Policy stack_policy(const CoalesceOptions& o) {
  return {o.window_ns(), o.burst, o.enabled};
}

EventCoalescer::EventCoalescer(Sink& next, CoalesceOptions opt, std::function<std::uint64_t()> clock)
    : next_(next), opt_(opt), clock_(clock ? std::move(clock) : std::function<std::uint64_t()>(monotonic_ns)) {}

void EventCoalescer::stall(const StallReport& r) {
  if (!opt_.enabled) return next_.stall(r);
  const std::uint64_t now = clock_();
  if (r.ongoing)
    on_ongoing(r, now);
  else
    on_final(r, now);
}

// A report with no stacks (its stack read was skipped or failed) is no
// evidence of another culprit: it joins the loop's culprit of the same cause,
// and a culprit known only by its cause so far is named by the first report
// of that cause with stacks.
EventCoalescer::Culprit* EventCoalescer::find(Loop& l, Cause cause, const std::string& where) {
  for (Culprit& c : l.culprits)
    if (c.cause == cause && c.where == where) return &c;
  for (Culprit& c : l.culprits) {
    if (c.cause != cause || !(where.empty() || c.where.empty())) continue;
    if (c.where.empty()) c.where = where;
    return &c;
  }
  return nullptr;
}

EventCoalescer::Culprit* EventCoalescer::follow(Loop& l, Cause cause, std::string where, std::uint64_t now) {
  if (Culprit* c = find(l, cause, where)) return c;
  if (l.culprits.size() >= CoalesceOptions::kMaxCulpritsPerLoop) return nullptr;
  Culprit& c = l.culprits.emplace_back();
  c.cause = cause;
  c.where = std::move(where);
  c.window_start_ns = now;
  next_due_ns_ = std::min(next_due_ns_, now + opt_.window_ns());
  return &c;
}

bool EventCoalescer::end_window(Culprit& c, std::uint64_t now) {
  const bool folded = c.folded.count > 0;
  if (folded) {
    StallReport summary = std::move(*c.longest);
    summary.coalesced = c.folded;
    summary.coalesced->window_s = opt_.window_s;
    next_.stall(summary);
    ++counts_.summaries;
  }
  c.storming = folded;
  c.window_start_ns = now;
  c.written = 0;
  c.window_max_ms = 0;
  c.longest.reset();
  c.folded = {};
  return folded;
}

void EventCoalescer::on_ongoing(const StallReport& r, std::uint64_t now) {
  const auto it = loops_.find(loop_key(r));
  if (it == loops_.end()) return next_.stall(r);  // nothing of this loop is being coalesced
  Loop& l = it->second;
  const Culprit* c = find(l, r.cause, culprit_site(r));
  if (c && over_allowance(*c) && r.duration_ms < CoalesceOptions::kOngoingHoldMs && l.open_stall != r.stall_id) {
    // Its final report will most likely be folded too; if the stall goes
    // on, tick() writes this report once it has lasted kOngoingHoldMs.
    if (l.held && l.held->report.stall_id != r.stall_id) next_.stall(l.held->report);  // never lost
    const std::uint64_t until = now + ms_to_ns(CoalesceOptions::kOngoingHoldMs - r.duration_ms);
    l.held = Held{r, until};
    next_due_ns_ = std::min(next_due_ns_, until);
    return;
  }
  if (l.held && l.held->report.stall_id == r.stall_id) l.held.reset();  // this newer report replaces it
  l.open_stall = r.stall_id;
  next_.stall(r);
}

void EventCoalescer::on_final(const StallReport& r, std::uint64_t now) {
  auto it = loops_.find(loop_key(r));
  if (it == loops_.end()) {
    if (loops_.size() >= CoalesceOptions::kMaxLoops) {
      ++counts_.table_full;
      return next_.stall(r);
    }
    it = loops_.emplace(loop_key(r), Loop{}).first;
  }
  Loop& l = it->second;
  // A consumer that saw this stall's ongoing report gets its final report.
  const bool open = l.open_stall == r.stall_id;
  l.open_stall.clear();
  if (l.held) {
    if (l.held->report.stall_id == r.stall_id)
      ++counts_.ongoing_withheld;
    else
      next_.stall(l.held->report);  // an older stall whose final never came
    l.held.reset();
  }
  Culprit* c = r.duration_ms >= CoalesceOptions::kAlwaysWriteMs ? nullptr : follow(l, r.cause, culprit_site(r), now);
  if (!c) {
    if (r.duration_ms < CoalesceOptions::kAlwaysWriteMs) ++counts_.table_full;
    if (l.culprits.empty()) loops_.erase(it);
    return next_.stall(r);
  }
  if (now >= c->window_start_ns + opt_.window_ns()) {
    end_window(*c, now);
    next_due_ns_ = std::min(next_due_ns_, now + opt_.window_ns());
  }
  const bool much_longer = c->window_max_ms > 0 && r.duration_ms > 2 * c->window_max_ms;
  c->window_max_ms = std::max(c->window_max_ms, r.duration_ms);
  const bool within = !over_allowance(*c);
  if (within) ++c->written;
  if (within || open || much_longer) return next_.stall(r);
  Coalesced& f = c->folded;
  if (f.count == 0) f.first_start_unix_ns = r.start_unix_ns;
  ++f.count;
  f.total_ms += r.duration_ms;
  f.max_ms = std::max(f.max_ms, r.duration_ms);
  f.first_start_unix_ns = std::min(f.first_start_unix_ns, r.start_unix_ns);
  f.last_start_unix_ns = std::max(f.last_start_unix_ns, r.start_unix_ns);
  // The longest, among those with stacks if any has them (repeats' stacks
  // are not all read: stack_budget.hpp); max_ms says the longest of all.
  const auto stacks = [](const StallReport& s) { return !s.python_stacks.empty() || !s.native_stack.empty(); };
  if (!c->longest || (stacks(r) && !stacks(*c->longest)) ||
      (stacks(r) == stacks(*c->longest) && r.duration_ms > c->longest->duration_ms))
    c->longest = r;
  ++counts_.coalesced;
}

void EventCoalescer::tick(std::uint64_t now_ns) {
  next_.tick(now_ns);  // its own timing (the text sink's status line)
  if (!opt_.enabled || now_ns < next_due_ns_) return;
  const std::uint64_t window = opt_.window_ns();
  std::uint64_t due = UINT64_MAX;
  for (auto it = loops_.begin(); it != loops_.end();) {
    Loop& l = it->second;
    if (l.held && now_ns >= l.held->until_ns) {
      // Still going after kOngoingHoldMs: as it was measured, late.
      l.open_stall = l.held->report.stall_id;
      next_.stall(l.held->report);
      l.held.reset();
    }
    if (l.held) due = std::min(due, l.held->until_ns);
    std::erase_if(l.culprits, [&](Culprit& c) {
      if (now_ns < c.window_start_ns + window) {
        due = std::min(due, c.window_start_ns + window);
        return false;
      }
      if (!end_window(c, now_ns)) return true;  // a quiet window: forgotten
      due = std::min(due, now_ns + window);
      return false;
    });
    if (l.culprits.empty() && !l.held)
      it = loops_.erase(it);
    else
      ++it;
  }
  next_due_ns_ = due;
}

void EventCoalescer::flush() {
  const std::uint64_t now = clock_();
  for (auto& [key, l] : loops_) {
    for (Culprit& c : l.culprits) end_window(c, now);
    if (l.held) next_.stall(l.held->report);
  }
  loops_.clear();
  next_due_ns_ = UINT64_MAX;
}

}  // namespace loopstall
