// Signal handling, which both binaries need.
#pragma once

#include <atomic>

namespace loopstall {

// SIGINT/SIGTERM set the returned flag; blocking calls return EINTR (no
// SA_RESTART) so the main loop notices promptly.
const std::atomic<bool>& install_stop_signals();
// SIGHUP sets the returned flag (the daemon reloads its config).
std::atomic<bool>& install_reload_signal();

}  // namespace loopstall
