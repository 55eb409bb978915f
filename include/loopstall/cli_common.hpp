// Pieces both binaries need: signal handling and the sink of a format.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "loopstall/sink.hpp"

namespace loopstall {

// SIGINT/SIGTERM set the returned flag; blocking calls return EINTR (no
// SA_RESTART) so the main loop notices promptly.
const std::atomic<bool>& install_stop_signals();
// SIGHUP sets the returned flag (the daemon reloads its config).
std::atomic<bool>& install_reload_signal();

// "json" -> JsonLinesSink, "text" -> TextSink.
std::unique_ptr<Sink> make_sink(const std::string& format, Writer out);

}  // namespace loopstall
