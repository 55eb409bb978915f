// The client of loopstalld's control socket (daemon_client.cpp): captures
// for capture_command (cli_commands.cpp), questions for `status` and `top`.
#pragma once

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "loopstall/cli_commands.hpp"
#include "loopstall/control_protocol.hpp"
#include "loopstall/output.hpp"

namespace loopstall {

// The capture runs in loopstalld (its BPF programs, its control socket); the
// lines it sends are exactly what a standalone capture prints, handed to
// `out` one line at a time so this process keeps reading the socket; with
// --save the capture file is written here from the records the daemon sends.
void capture_via_daemon(int fd, const CaptureArgs& a, OutputQueue& out);

// One question, one answer: connects to `socket`, sends `request` and reads
// the answer line (at most max_bytes, within timeout) as a JSON object.
// Throws std::runtime_error saying what a user can act on: loopstalld is not
// running, permission denied (not root), no (valid) answer in time.
nlohmann::json ask_daemon(const std::string& socket, const ControlRequest& request, std::chrono::milliseconds timeout,
                          std::size_t max_bytes);

}  // namespace loopstall
