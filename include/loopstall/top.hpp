// `loopstall top`: a live view of the watched loops, refreshed every
// interval, through loopstalld's control socket or standalone.
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <string>

#include "loopstall/correlator.hpp"
#include "loopstall/loop_engine.hpp"
#include "loopstall/loop_health.hpp"

namespace loopstall {

// Where the per-process totals come from.
class TopSource {
 public:
  virtual ~TopSource() = default;
  // Lets time pass, up to max_wait_ms (the standalone detector runs here).
  virtual void pump(int max_wait_ms) = 0;
  // Throws std::runtime_error when the totals cannot be had (daemon gone).
  virtual Summary snapshot() = 0;
  virtual std::string name() const = 0;  // "loopstalld" or "standalone"
};

// A detector of our own with a correlator that keeps live processes only.
std::unique_ptr<TopSource> standalone_top_source(const Selection& sel, double threshold_ms, const EngineFactory& make);
// loopstalld's totals through its control socket ("loops" request).
std::unique_ptr<TopSource> daemon_top_source(const std::string& socket);

struct TopOptions {
  double interval_s = 1;
  TopSort sort = TopSort::Utilisation;
  bool batch = false;            // plain tables on stdout, no terminal UI
  int count = 0;                 // refreshes before exiting; 0: until q / Ctrl-C
  std::set<std::uint32_t> pids;  // rows shown; empty: all
};

// Returns the exit status.
int run_top(const TopOptions& opt, TopSource& src, const std::atomic<bool>& stop);

// The `loopstall top` command: through loopstalld when its socket answers
// (unless standalone), else with a detector of its own.
struct TopCommand {
  TopOptions view;
  std::string sort = "util";
  bool standalone = false;
  std::string socket;
  bool all_loops = false;
  double threshold_ms = 100;
};
int top_command(TopCommand cmd, const EngineFactory& make);

}  // namespace loopstall
