#include "loopstall/runner.hpp"

#include "loopstall/clock.hpp"
#include "loopstall/detector.hpp"

namespace loopstall {

RunStats run_detector(const RunOptions& opt, Sink& sink, const std::atomic<bool>& stop,
                      const std::function<void(Engine&)>& on_ready) {
  EngineOptions eo;
  eo.threshold_ns = static_cast<std::uint64_t>(opt.threshold_ms * 1e6);
  Detector det(eo);
  Correlator corr(opt.selection, opt.threshold_ms, sink);
  det.add(corr);
  if (on_ready) on_ready(det.engine());

  const std::uint64_t t0 = monotonic_ns();
  const std::uint64_t end_ns = opt.duration_s ? t0 + static_cast<std::uint64_t>(*opt.duration_s * 1e9) : UINT64_MAX;
  while (!stop.load(std::memory_order_relaxed)) {
    const std::uint64_t now = monotonic_ns();
    if (now >= end_ns) break;
    det.step(static_cast<int>(std::min<std::uint64_t>((end_ns - now) / 1'000'000 + 1, 1000)));
  }
  det.flush(corr);
  det.remove(corr);
  sink.finish(corr.summary(static_cast<double>(monotonic_ns() - t0) / 1e9));
  return {det.engine().stats(), det.samples_over_budget()};
}

}  // namespace loopstall
