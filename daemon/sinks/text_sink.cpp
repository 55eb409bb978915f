// When text lines are written: each finished stall once; ongoing stalls as a
// status line redrawn in place on a terminal, as lines of their own once old
// enough elsewhere (text_sink.hpp).
#include "loopstall/text_sink.hpp"

#include <algorithm>

namespace loopstall {
namespace {

// The status line is drawn from column 0 (where every record leaves the
// cursor), erasing what was there, and ends with a carriage return: the next
// record overwrites it. Records end in '\n' or '\r', so a client relaying
// the daemon's output line by line relays the status line too.
constexpr const char* kEraseLine = "\x1b[K";

// The first `cols` characters of a line of printable() text (valid UTF-8).
std::string cut(const std::string& s, std::size_t cols) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == cols) return s.substr(0, i);
  return s;
}

}  // namespace

std::size_t TextSink::width() const {
  return terminal() ? static_cast<std::size_t>(std::max(opt_.terminal_columns, 40)) : kTextWidth;
}

void TextSink::emit(const std::string& lines) {
  std::string rec = status_shown_ ? kEraseLine : "";
  status_shown_ = false;
  if (!header_done_) rec += stall_header() + "\n";
  header_done_ = true;
  out_(rec + lines);
}

// The longest ongoing stall, and how many more there are.
void TextSink::draw_status() {
  if (ongoing_.empty()) return;
  const auto longest = std::max_element(ongoing_.begin(), ongoing_.end(), [](const auto& a, const auto& b) {
    return a.second.last.duration_ms < b.second.last.duration_ms;
  });
  std::string line = format_stall_line(longest->second.last, width() - 1);
  if (ongoing_.size() > 1) line += " (+" + std::to_string(ongoing_.size() - 1) + " more)";
  if (!header_done_) emit("");
  out_(std::string(kEraseLine) + cut(line, width() - 1) + "\r");
  status_shown_ = true;
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
  o.printed = opt_.ongoing_lines || (!terminal() && r.duration_ms >= kOngoingLineMs);
  if (o.printed)
    emit(format_stall(r, width()));
  else if (terminal())
    draw_status();
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
