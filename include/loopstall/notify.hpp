// systemd notification protocol (sd_notify): READY, STATUS, WATCHDOG,
// RELOADING, STOPPING. No-ops when not started by systemd.
#pragma once

#include <cstdint>
#include <string>

namespace loopstall {

class Notifier {
 public:
  Notifier();
  void ready(const std::string& status);
  void status(const std::string& status);
  void reloading();
  void stopping();
  // Pings the watchdog when half its interval has passed; call from the
  // main loop, so a stuck loop stops the pings and systemd restarts us.
  void maybe_ping(std::uint64_t now_ns);

 private:
  std::uint64_t watchdog_ns_ = 0;
  std::uint64_t last_ping_ns_ = 0;
};

}  // namespace loopstall
