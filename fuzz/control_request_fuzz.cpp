// A control-socket request line (written by any root client, possibly
// garbage): parse_request gives a request or an error, never an exception,
// and the line sent back is always valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "loopstall/control_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const loopstall::ControlRequest r = loopstall::parse_request(line);
  if (r.error.empty() && r.cmd == loopstall::ControlRequest::Cmd::Capture) {
    const loopstall::CaptureRequest& c = r.capture;
    if (!(c.threshold_ms > 0) || (c.format != "json" && c.format != "text")) std::abort();
    for (const std::uint32_t pid : c.pids) {
      if (pid == 0 || pid > (1u << 22)) std::abort();
    }
  }
  // As ControlServer answers it; the message may quote the request's bytes.
  const std::string reply = loopstall::answer_line({false, r.error + std::string(line)});
  if (reply.empty() || reply.back() != '\n' || !nlohmann::json::accept(reply.substr(0, reply.size() - 1))) std::abort();
  // The client reads the answer back as the same refusal.
  if (loopstall::parse_answer(std::string_view(reply).substr(0, reply.size() - 1)).ok) std::abort();
  return 0;
}
