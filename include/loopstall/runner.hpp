// The detector's main loop, shared by `loopstall capture` and loopstalld:
// BPF -> ring buffer -> correlator -> sinks.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

#include "loopstall/correlator.hpp"
#include "loopstall/event_coalescer.hpp"
#include "loopstall/loop_engine.hpp"

namespace loopstall {

struct RunOptions {
  Selection selection;
  double threshold_ms = Tuning::kDefaultThresholdMs;
  std::optional<double> duration_s;  // until stopped
  // Coalescing in the output (its stack policy goes to the Detector).
  CoalesceOptions coalesce;
};

// What the tracer itself did in a run: for the closing diagnostic line.
struct RunStats {
  BpfStats bpf;
  std::uint64_t samples_over_budget = 0;
};

// Runs until `stop` is set or the duration ends, then reports what is
// pending and calls sink.finish(). Throws EngineError when BPF cannot run.
// `on_ready` is called once the programs are attached. The engine is what
// `make` builds (make_bpf_engine in the binaries).
RunStats run_detector(const RunOptions& opt, const EngineFactory& make, Sink& sink, const std::atomic<bool>& stop,
                      const std::function<void(LoopEngine&)>& on_ready = {});

}  // namespace loopstall
