// Pieces both binaries need: signal handling and output selection.
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "loopstall/sink.hpp"

namespace loopstall {

// SIGINT/SIGTERM set the returned flag; blocking calls return EINTR (no
// SA_RESTART) so the main loop notices promptly.
const std::atomic<bool>& install_stop_signals();
// SIGHUP sets the returned flag (the daemon reloads its config).
std::atomic<bool>& install_reload_signal();

// Opens FILE for writing ("-" is stdout; append when asked). Throws
// std::runtime_error naming the file and the reason.
std::FILE* open_output(const std::string& path, bool append);

// "json" -> JsonLinesSink, "text" -> TextSink.
std::unique_ptr<Sink> make_sink(const std::string& format, Writer out);

}  // namespace loopstall
