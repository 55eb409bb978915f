#include "loopstall/runner.hpp"

#include <optional>

#include "loopstall/capture_session.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/detector.hpp"
#include "loopstall/phase_times.hpp"

namespace loopstall {

RunStats run_detector(const RunOptions& opt, const EngineFactory& make, Sink& sink, const std::atomic<bool>& stop,
                      const std::function<void(LoopEngine&)>& on_ready) {
  EngineOptions eo;
  eo.tuning.threshold_ms = opt.threshold_ms;
  std::optional<PhaseTimer> attach(std::in_place, Phase::kAttach);
  Detector det(eo, make);
  if (opt.coalesce.enabled) det.set_stack_policy(stack_policy(opt.coalesce));
  CaptureSession session(det, opt.selection, opt.threshold_ms, sink);
  attach.reset();
  if (on_ready) on_ready(det.engine());

  const std::uint64_t t0 = monotonic_ns();
  const std::uint64_t end_ns = opt.duration_s ? t0 + static_cast<std::uint64_t>(*opt.duration_s * 1e9) : UINT64_MAX;
  while (!stop.load(std::memory_order_relaxed)) {
    const std::uint64_t now = monotonic_ns();
    if (now >= end_ns) break;
    det.step(static_cast<int>(std::min<std::uint64_t>((end_ns - now) / 1'000'000 + 1, 1000)));
  }
  session.finish();
  return {det.engine().stats(), det.samples_over_budget()};
}

}  // namespace loopstall
