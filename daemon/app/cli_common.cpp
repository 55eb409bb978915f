#include "loopstall/cli_common.hpp"

#include <csignal>
#include <cstring>
#include <stdexcept>

namespace loopstall {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int) {
  g_stop.store(true);
}
void on_hup(int) {
  g_reload.store(true);
}

}  // namespace

const std::atomic<bool>& install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return g_stop;
}

std::atomic<bool>& install_reload_signal() {
  struct sigaction sa {};
  sa.sa_handler = on_hup;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, nullptr);
  return g_reload;
}

}  // namespace loopstall
