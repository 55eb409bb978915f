#include "loopstall/capture_session.hpp"

#include "loopstall/clock.hpp"
#include "loopstall/json_sink.hpp"

namespace loopstall {

CaptureOutput::CaptureOutput(const std::string& format, Writer shown, TextOptions text,
                             const CoalesceOptions& coalesce) {
  if (format == "json")
    shown_ = std::make_unique<JsonLinesSink>(std::move(shown));
  else
    shown_ = std::make_unique<TextSink>(std::move(shown), text);
  if (coalesce.enabled) {
    coalescer_ = std::make_unique<EventCoalescer>(*shown_, coalesce);
    fan_.add(coalescer_.get());
  } else {
    fan_.add(shown_.get());
  }
}

void CaptureOutput::save(std::unique_ptr<Sink> records) {
  saved_ = std::move(records);
  fan_.add(saved_.get());
}

CaptureSession::CaptureSession(Detector& det, Selection sel, double threshold_ms, Sink& sink)
    : det_(det), sink_(sink), corr_(std::move(sel), threshold_ms, sink), started_ns_(monotonic_ns()) {
  det_.add(corr_);
}

CaptureSession::~CaptureSession() {
  if (running_) det_.remove(corr_);
}

double CaptureSession::elapsed_s() const {
  return static_cast<double>(monotonic_ns() - started_ns_) / 1e9;
}

void CaptureSession::finish() {
  end(true);
}

void CaptureSession::stop() {
  end(false);
}

void CaptureSession::end(bool summarize) {
  if (!running_) return;
  det_.flush(corr_);
  det_.remove(corr_);
  running_ = false;
  // Out of the detector first: the kernel threshold goes back to what the
  // remaining consumers want even if a sink throws (a full disk).
  if (summarize) sink_.finish(corr_.summary(elapsed_s()));
}

}  // namespace loopstall
