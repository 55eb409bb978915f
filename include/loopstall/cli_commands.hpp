// What `loopstall`'s subcommands do, apart from its main (which only parses
// flags): capture (standalone, or through loopstalld's control socket),
// status, report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loopstall/control_protocol.hpp"
#include "loopstall/loop_engine.hpp"

namespace loopstall {

struct CaptureArgs {
  CaptureRequest request;  // pids, threshold, all loops, format, save (as asked for)
  double duration_s = 0;   // 0: until SIGINT/SIGTERM
  std::string output = "-";
  bool standalone = false;
  std::string socket;
  std::string save;  // capture file, "" for none
  std::vector<std::string> command_line;
};

// The control socket: LOOPSTALL_CONTROL_SOCKET, else kDefaultControlSocket.
std::string default_control_socket();

// Each returns the exit status; errors a user can act on are thrown as
// std::exception with a message for "loopstall: error: ...".
// A standalone capture runs the engine `make` builds.
int capture_command(const CaptureArgs& a, const EngineFactory& make);
int status_command(const std::string& socket, const std::string& format);
int report_command(const std::string& path, const std::string& format);

}  // namespace loopstall
