// One capture, whoever runs it: `loopstall capture --standalone`, a
// `loopstall capture` client of loopstalld's control socket, and the daemon's
// own always-on watch. A correlator the detector feeds, from its start (the
// loops' counters as a baseline, decisions about every process) to its end
// (what is pending reported, the summary, out of the detector).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "loopstall/correlator.hpp"
#include "loopstall/detector.hpp"
#include "loopstall/event_coalescer.hpp"
#include "loopstall/sink.hpp"
#include "loopstall/text_sink.hpp"

namespace loopstall {

// What a capture reports to: the output a person or a tool reads (text or
// JSON Lines, chosen here by format; repeats coalesced when asked) and, when
// it is saved, the capture file's records (never coalesced).
class CaptureOutput {
 public:
  // format: "text" (laid out by `text`) or "json".
  CaptureOutput(const std::string& format, Writer shown, TextOptions text = {}, const CoalesceOptions& coalesce = {});
  void save(std::unique_ptr<Sink> records);
  Sink& sink() { return fan_; }

 private:
  std::unique_ptr<Sink> shown_, saved_;
  std::unique_ptr<EventCoalescer> coalescer_;
  FanoutSink fan_;
};

class CaptureSession {
 public:
  // Starts feeding a correlator of `sel` at `threshold_ms` that reports to
  // `sink` (not owned; it must outlive the session).
  CaptureSession(Detector& det, Selection sel, double threshold_ms, Sink& sink);
  // Leaves the detector if finish()/stop() did not: nothing more reported.
  ~CaptureSession();
  CaptureSession(const CaptureSession&) = delete;
  CaptureSession& operator=(const CaptureSession&) = delete;

  Correlator& correlator() { return corr_; }
  const Correlator& correlator() const { return corr_; }
  double elapsed_s() const;
  bool running() const { return running_; }

  // The end of a capture: events in the ring and stalls in progress
  // reported, the summary to the sink (finish) or none (stop: the daemon's
  // watch has no summary), and out of the detector. Once; later calls do
  // nothing.
  void finish();
  void stop();

 private:
  void end(bool summarize);

  Detector& det_;
  Sink& sink_;
  Correlator corr_;
  std::uint64_t started_ns_;
  bool running_ = true;
};

}  // namespace loopstall
