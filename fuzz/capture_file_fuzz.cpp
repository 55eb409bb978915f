// Capture files (`loopstall capture --save`) come from other hosts and other
// people: `loopstall report FILE` must turn any bytes into a report or a
// CaptureError with a message, never a crash, a hang or another exception.
// The input is the file as it lies on disk (gzip, or plain JSON Lines, which
// zlib reads through transparently); the target then makes everything the
// report, flamegraph and diff commands make of what was read, with its
// totals intact.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "input_file.hpp"
#include "loopstall/capture_file.hpp"
#include "loopstall/diff.hpp"
#include "loopstall/flamegraph.hpp"
#include "loopstall/report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = fuzz_input_file(data, size);
  loopstall::Capture c;
  try {
    c = loopstall::read_capture(path);
  } catch (const loopstall::CaptureError&) {
    return 0;  // refused with a message: what the report command prints
  }
  // What was accepted is consistent.
  if (c.meta.version < 1 || c.meta.version > loopstall::kCaptureFormatVersion) std::abort();
  if (c.meta.end_unix_ns < c.meta.start_unix_ns) std::abort();
  for (const auto& ev : c.stalls)
    if (!ev.is_object()) std::abort();
  const auto dump = [](const auto& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  // `loopstall report` in both formats.
  const loopstall::Report r = loopstall::make_report(c);
  if (loopstall::format_report_text(r).empty() || dump(loopstall::report_to_json(r)).empty()) std::abort();
  // `loopstall flamegraph`: a stall's stacks add up to its duration.
  const auto stacks = loopstall::stall_stacks(c);
  double ms = 0;
  for (const auto& s : stacks) {
    if (!(s.ms >= 0) || s.frames.size() < 2) std::abort();
    ms += s.ms;
  }
  double want = 0;
  for (const auto& ev : c.stalls) want += std::max(0.0, ev["duration_ms"].get<double>());
  if (std::isfinite(want) && std::fabs(ms - want) > 1e-6 * (1 + want)) std::abort();
  (void)loopstall::folded_stacks(stacks);
  (void)dump(loopstall::speedscope_profile(stacks, "fuzz"));
  const std::string svg = loopstall::flame_svg(loopstall::flame_graph(stacks), {});
  if (svg.rfind("</svg>\n") != svg.size() - 7) std::abort();
  // `loopstall diff`.
  (void)loopstall::format_diff_text(loopstall::diff_captures(c, c, "a", "b"));
  (void)loopstall::flame_svg(loopstall::diff_flame_graph(stacks, stacks), {});
  return 0;
}
