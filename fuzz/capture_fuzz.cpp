// A capture file (`loopstall report|flamegraph|diff FILE`, from any host):
// read_capture refuses it with a CaptureError or returns a capture, and every
// report made of what it returns -- report, flame graph stacks, folded,
// speedscope, SVG, diff -- is made without a crash, a sanitizer report or an
// exception, with its totals intact. The input is the file's JSON Lines
// (zlib reads data without a gzip header as it is).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "loopstall/capture_file.hpp"
#include "loopstall/diff.hpp"
#include "loopstall/flamegraph.hpp"
#include "loopstall/report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = memfd_create("capture", 0);
  if (fd < 0) return 0;
  if (write(fd, data, size) != static_cast<ssize_t>(size)) {
    close(fd);
    return 0;
  }
  loopstall::Capture c;
  try {
    c = loopstall::read_capture("/proc/self/fd/" + std::to_string(fd));
  } catch (const loopstall::CaptureError&) {
    close(fd);
    return 0;
  }
  close(fd);
  const auto dump = [](const nlohmann::ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  const loopstall::Report r = loopstall::make_report(c);
  if (loopstall::format_report_text(r).empty() || dump(loopstall::report_to_json(r)).empty()) std::abort();
  const auto stacks = loopstall::stall_stacks(c);
  double ms = 0;
  for (const auto& s : stacks) {
    if (!(s.ms >= 0) || s.frames.size() < 2) std::abort();
    ms += s.ms;
  }
  double want = 0;  // a stall's stacks add up to its duration
  for (const auto& ev : c.stalls) want += std::max(0.0, ev["duration_ms"].get<double>());
  if (std::isfinite(want) && std::fabs(ms - want) > 1e-6 * (1 + want)) std::abort();
  (void)loopstall::folded_stacks(stacks);
  (void)dump(loopstall::speedscope_profile(stacks, "fuzz"));
  const std::string svg = loopstall::flame_svg(loopstall::flame_graph(stacks), {});
  if (svg.rfind("</svg>\n") != svg.size() - 7) std::abort();
  (void)loopstall::format_diff_text(loopstall::diff_captures(c, c, "a", "b"));
  (void)loopstall::flame_svg(loopstall::diff_flame_graph(stacks, stacks), {});
  return 0;
}
