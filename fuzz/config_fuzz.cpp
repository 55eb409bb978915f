// loopstalld's configuration file: JSON parse and validation. Any text gives
// a Config or a ConfigError, never another exception, a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "loopstall/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const loopstall::Config c = loopstall::parse_config(text);
    // What the daemon does next with a valid config.
    loopstall::parse_listen(c.metrics_listen, "metrics_listen");
    if (!(c.threshold_ms >= 1) || !(c.sample_hz >= 1)) std::abort();
  } catch (const loopstall::ConfigError&) {
  }
  return 0;
}
