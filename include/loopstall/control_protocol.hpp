// loopstalld's control protocol, both ends: what `loopstall capture`/`status`
// send and what the daemon answers. AF_UNIX stream, one JSON request line
// per connection:
//   {"cmd":"status"}  -> one JSON object (Daemon::status, app/daemon.cpp), then close
//   {"cmd":"capture","pids":[..],"threshold_ms":N,"all_loops":b,
//    "format":"json"|"text","save":b,"terminal_columns":N,"ongoing_lines":b,"coalesce":b}
//       -> {"ok":true} (or {"ok":false,"error":"..."}), then the same lines
//          `loopstall capture` prints standalone; when the client shuts down
//          its writing side, what is pending and the summary follow, then
//          close. With "save", the capture file's records (everything but its
//          header, which the client writes) come too, each line prefixed by
//          kSaveRecordMark (ASCII RS, as in RFC 7464): no text or JSON output
//          line starts with it. Text is rendered in the daemon for the
//          client's output: "terminal_columns" (absent: not a terminal) is
//          its width, and then a status line may end in '\r', not '\n'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "loopstall/tuning.hpp"

namespace loopstall {

inline constexpr const char* kDefaultControlSocket = "/run/loopstalld/control.sock";
inline constexpr char kSaveRecordMark = '\x1e';

// What a capture asks for; plain data on both ends.
struct CaptureRequest {
  std::vector<std::uint32_t> pids;  // empty: every process
  double threshold_ms = Tuning::kDefaultThresholdMs;
  bool all_loops = false;
  std::string format = "json";  // or "text"
  bool save = false;            // also send the capture file's records
  // Text: the width of the terminal the client writes to, 0 when it is not one.
  int terminal_columns = 0;
  bool ongoing_lines = false;  // text: every ongoing report as a line (--ongoing)
  bool coalesce = false;       // repeats folded into summaries (event_coalescer.hpp)
};

// One request line, parsed and checked; nothing is started yet.
struct ControlRequest {
  enum class Cmd { Status, Capture, Loops };
  Cmd cmd = Cmd::Status;
  CaptureRequest capture;  // Capture only
  std::string error;       // "" when the request is fine; else what the client is told
};

// Server: parses outside data; never throws (an error is in .error).
ControlRequest parse_request(std::string_view line);
// Client: the line that asks for `r`.
std::string request_line(const ControlRequest& r);

// One line of the protocol: a JSON object and a newline, whatever bytes of
// outside data its strings hold.
std::string control_line(const nlohmann::json& j);

// The first answer to a capture: accepted, or why not.
struct ControlAnswer {
  bool ok = false;
  std::string error;  // when !ok
};
std::string answer_line(const ControlAnswer& a);
// Client: a line from the daemon; a line that is not an answer is an error
// quoting it.
ControlAnswer parse_answer(std::string_view line);

}  // namespace loopstall
