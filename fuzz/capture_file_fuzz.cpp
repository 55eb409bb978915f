// Capture files (`loopstall capture --save`) come from other hosts and other
// people: `loopstall report FILE` must turn any bytes into a report or a
// CaptureError with a message, never a crash, a hang or another exception.
// The input is the file as it lies on disk (gzip, or plain JSON Lines, which
// zlib reads through transparently); the target then does what the report
// command does with what was read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "input_file.hpp"
#include "loopstall/capture_file.hpp"
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
  // `loopstall report` in both formats.
  const loopstall::Report r = loopstall::make_report(c);
  (void)loopstall::format_report_text(r);
  (void)loopstall::report_to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
