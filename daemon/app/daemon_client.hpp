// The capture half of the control socket's client (daemon_client.cpp), for
// capture_command (cli_commands.cpp).
#pragma once

#include "loopstall/cli_commands.hpp"
#include "loopstall/output.hpp"

namespace loopstall {

// The capture runs in loopstalld (its BPF programs, its control socket); the
// lines it sends are exactly what a standalone capture prints, handed to
// `out` one line at a time so this process keeps reading the socket; with
// --save the capture file is written here from the records the daemon sends.
void capture_via_daemon(int fd, const CaptureArgs& a, OutputQueue& out);

}  // namespace loopstall
