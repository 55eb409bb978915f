// Human-readable output (`capture --format text`), in the habits of bcc's
// tools and py-spy: a header, one aligned line per finished stall naming its
// cause and the culprit's top frames (`fn (file.py:line) < caller (...)`),
// and a summary table at the end. Ongoing stalls: on a terminal one status
// line updated in place; elsewhere a line once the stall is old enough, so a
// hung loop is never silent. Every string from a watched process goes
// through printable(): a comm like "\x1b]0;..." must not drive the terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "loopstall/sink.hpp"

namespace loopstall {

struct TextOptions {
  int terminal_columns = 0;    // the reader's terminal width; 0: not a terminal
  bool ongoing_lines = false;  // every ongoing report as a line of its own (--ongoing)
};

// Width lines are wrapped at off a terminal.
inline constexpr std::size_t kTextWidth = 120;
// Off a terminal, an ongoing stall is printed once it is this old (the
// correlator reports it at the threshold, then every 5 s).
inline constexpr double kOngoingLineMs = 1000;
// On a terminal the status line's age is redrawn this often between the
// correlator's reports; a stall not reported again for kStatusStaleNs
// (two missed 5 s reports: its process is gone) leaves the status line and
// is forgotten (not printed at the end as still going on).
inline constexpr std::uint64_t kStatusRedrawNs = 1'000'000'000ULL;
inline constexpr std::uint64_t kStatusStaleNs = 11'000'000'000ULL;

// Lines narrower than this leave out TID, COMM, LOOP and TIME's milliseconds,
// and a cause of one part its time ("blocked in read").
inline constexpr std::size_t kCompactBelow = 100;

// The column header above the stall lines of that width (no newline).
std::string stall_header(std::size_t width = kTextWidth);
// The stall line alone (no newline): time, pid, tid, comm, loop, duration,
// cause ("cpu 77.6 ms", "blocked 300 ms in read"), the culprit's frames as
// far as they fit in `width`; "ONGOING" before the cause while it lasts.
std::string format_stall_line(const StallReport& r, std::size_t width = kTextWidth);
// The stall line and its continuation lines (the rest of the culprit's top
// frames, other culprits with a large share, the C code it was in), each
// ending in '\n'.
std::string format_stall(const StallReport& r, std::size_t width = kTextWidth);
std::string format_summary(const Summary& s);

class TextSink : public Sink {
 public:
  explicit TextSink(Writer out, TextOptions opt = {}) : out_(std::move(out)), opt_(opt) {}
  void stall(const StallReport& r) override;
  // After each scan (now_ns: the scan's CLOCK_MONOTONIC, the time of the
  // ongoing reports it made): the status line's age advances.
  void tick(std::uint64_t now_ns) override;
  void finish(const Summary& s) override;

 private:
  bool terminal() const { return opt_.terminal_columns > 0; }
  std::size_t width() const;
  void emit(const std::string& lines);
  void draw_status();

  struct Ongoing {
    StallReport last;
    bool printed = false;     // the last report was printed as a line
    std::uint64_t at_ns = 0;  // when it was measured (the next tick's time; 0 until then)
  };
  Writer out_;
  TextOptions opt_;
  bool header_done_ = false, status_shown_ = false;
  std::uint64_t now_ns_ = 0, drawn_ns_ = 0;  // the last tick, the last status drawn
  std::map<std::string, Ongoing> ongoing_;   // by stall_id
};

}  // namespace loopstall
