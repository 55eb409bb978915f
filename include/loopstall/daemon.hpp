// loopstalld's work, apart from its main (which only parses flags): the
// configuration with the flags on top, and the daemon itself -- its outputs,
// its watch of every Python loop (a CaptureSession), the control socket, the
// main loop, reloads and `loopstall status`.
#pragma once

#include <optional>
#include <string>

#include "loopstall/config.hpp"
#include "loopstall/loop_engine.hpp"

namespace loopstall {

struct DaemonFlags {
  std::string config;
  // Unset: the config file's value. "" is a value (e.g. --events "" = off).
  std::optional<std::string> metrics_listen, control_socket, events;
  double threshold_ms = 0;  // 0: the config file's
  bool check_config = false;
};

// Config file (or built-in defaults) with the command line on top; throws
// ConfigError (or std::runtime_error) naming what is wrong.
Config effective_config(const DaemonFlags& f);

// Runs until SIGINT/SIGTERM (SIGHUP reloads), with the engine `make` builds.
// Returns the exit status; throws for an error at start-up.
int run_daemon(const DaemonFlags& flags, const EngineFactory& make);

}  // namespace loopstall
