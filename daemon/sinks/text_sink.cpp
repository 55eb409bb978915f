// When text lines are written: each finished stall once; ongoing stalls as a
// status line redrawn in place on a terminal, as lines of their own once old
// enough elsewhere (text_sink.hpp).
#include "loopstall/text_sink.hpp"

#include <algorithm>
#include <optional>

#include "loopstall/printable.hpp"

namespace loopstall {
namespace {

// The status line is drawn from column 0 (where every record leaves the
// cursor), erasing what was there, and ends with a carriage return: the next
// record overwrites it. Records end in '\n' or '\r', so a client relaying
// the daemon's output line by line relays the status line too.
constexpr const char* kEraseLine = "\x1b[K";

// A stall spent (>= 90 %) in one state -- on CPU, blocked, waiting for a CPU
// -- is taken to be in it still, extra_ms after its last report: a hang's
// status line counts up between the correlator's reports. A mixed one is
// shown as last measured until its next report.
void extrapolate(StallReport& r, double extra_ms) {
  Breakdown& b = r.breakdown;
  double* part = r.cause == Cause::Cpu               ? &b.on_cpu_ms
                 : r.cause == Cause::BlockingSyscall ? &b.blocked_ms
                 : r.cause == Cause::Runqueue        ? &b.runqueue_ms
                                                     : nullptr;
  if (!part || extra_ms <= 0 || *part < 0.9 * r.duration_ms) return;
  *part += extra_ms;
  r.duration_ms += extra_ms;
  if (r.cause == Cause::BlockingSyscall && !r.syscalls.empty()) r.syscalls.front().ms += extra_ms;
}

}  // namespace

std::size_t TextSink::width() const {
  return terminal() ? static_cast<std::size_t>(std::max(opt_.terminal_columns, 40)) : kTextWidth;
}

void TextSink::emit(const std::string& lines) {
  std::string rec = status_shown_ ? kEraseLine : "";
  status_shown_ = false;
  if (!header_done_) rec += stall_header(width()) + "\n";
  header_done_ = true;
  out_(rec + lines);
}

// The longest ongoing stall, and how many more there are, as they are now
// (extrapolate()); none left: no status line.
void TextSink::draw_status() {
  if (ongoing_.empty()) {
    if (status_shown_) out_(kEraseLine);
    status_shown_ = false;
    return;
  }
  std::optional<StallReport> longest;
  for (const auto& [id, o] : ongoing_) {
    const double extra_ms = o.at_ns && now_ns_ > o.at_ns ? static_cast<double>(now_ns_ - o.at_ns) / 1e6 : 0;
    // Copied only when it is the longest so far: at most a few per redraw.
    if (longest && o.last.duration_ms + extra_ms <= longest->duration_ms) continue;
    longest = o.last;
    extrapolate(*longest, extra_ms);
  }
  std::string line = format_stall_line(*longest, width() - 1);
  if (ongoing_.size() > 1) line += " (+" + std::to_string(ongoing_.size() - 1) + " more)";
  if (!header_done_) emit("");
  out_(std::string(kEraseLine) + first_columns(line, width() - 1) + "\r");
  status_shown_ = true;
  drawn_ns_ = now_ns_;
}

void TextSink::stall(const StallReport& r) {
  if (!r.ongoing) {
    ongoing_.erase(r.stall_id);
    emit(format_stall(r, width()));
    if (terminal() && !opt_.ongoing_lines) draw_status();  // the others still going on
    return;
  }
  Ongoing& o = ongoing_[r.stall_id];
  o.last = r;
  o.at_ns = 0;
  o.printed = opt_.ongoing_lines || (!terminal() && r.duration_ms >= kOngoingLineMs);
  if (o.printed)
    emit(format_stall(r, width()));
  else if (terminal())
    draw_status();
}

void TextSink::tick(std::uint64_t now_ns) {
  now_ns_ = now_ns;
  // A stall not reported again for kStatusStaleNs is over without a final
  // report (its process was killed): forgotten, or a long capture keeps
  // every such report and prints it at its end as still going on.
  for (auto it = ongoing_.begin(); it != ongoing_.end();) {
    if (!it->second.at_ns) it->second.at_ns = now_ns;
    it = now_ns > it->second.at_ns + kStatusStaleNs ? ongoing_.erase(it) : std::next(it);
  }
  if (!terminal() || opt_.ongoing_lines) return;
  if (status_shown_ && now_ns >= drawn_ns_ + kStatusRedrawNs) draw_status();
}

void TextSink::finish(const Summary& s) {
  // Stalls still going on when the capture ends stay on screen as lines.
  std::string lines;
  for (const auto& [id, o] : ongoing_)
    if (!o.printed) lines += format_stall(o.last, width());
  ongoing_.clear();
  if (!lines.empty()) emit(lines);
  out_((status_shown_ ? kEraseLine : "") + format_summary(s));
  status_shown_ = false;
}

}  // namespace loopstall
