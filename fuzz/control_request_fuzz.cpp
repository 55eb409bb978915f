// A control-socket request line (anyone with access to the socket writes
// it): parse_request either gives a request or throws std::runtime_error,
// and the error line sent back is always valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string_view>

#include <nlohmann/json.hpp>

#include "loopstall/control.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  try {
    const loopstall::ControlRequest r = loopstall::parse_request(line);
    if (r.cmd == loopstall::ControlRequest::Cmd::Capture && !(r.threshold_ms > 0)) std::abort();
  } catch (const std::exception& e) {
    // As ControlServer::handle_request answers it.
    const std::string reply = loopstall::error_response(e.what());
    if (reply.empty() || reply.back() != '\n') std::abort();
    if (!nlohmann::json::accept(reply.substr(0, reply.size() - 1))) std::abort();
  }
  return 0;
}
