#include "loopstall/notify.hpp"

#include <systemd/sd-daemon.h>

namespace loopstall {

Notifier::Notifier() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_ns_ = usec * 1000;
}

void Notifier::ready(const std::string& status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}
void Notifier::status(const std::string& status) {
  sd_notifyf(0, "STATUS=%s", status.c_str());
}
void Notifier::reloading() {
  sd_notify(0, "RELOADING=1");
}
void Notifier::stopping() {
  sd_notify(0, "STOPPING=1");
}

void Notifier::maybe_ping(std::uint64_t now_ns) {
  if (!watchdog_ns_ || now_ns - last_ping_ns_ < watchdog_ns_ / 2) return;
  sd_notify(0, "WATCHDOG=1");
  last_ping_ns_ = now_ns;
}

}  // namespace loopstall
