// Counters the BPF side keeps about itself (per-CPU, summed here).
#include <vector>

#include "engine_impl.hpp"

namespace loopstall {

BpfStats Engine::stats() {
  BpfStats s;
  std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(impl_->ncpus));
  auto read = [&](std::uint32_t idx) {
    std::uint64_t sum = 0;
    if (bpf_map__lookup_elem(impl_->skel->maps.stats, &idx, sizeof idx, per_cpu.data(),
                             per_cpu.size() * sizeof(std::uint64_t), 0) == 0)
      for (auto v : per_cpu) sum += v;
    return sum;
  };
  s.ringbuf_drops = read(LS_STAT_RINGBUF_DROPS);
  s.loops_full = read(LS_STAT_LOOPS_FULL);
  s.procs_full = read(LS_STAT_PROCS_FULL);
  s.iterations = read(LS_STAT_ITERATIONS);
  s.stalls = read(LS_STAT_STALLS);
  return s;
}

}  // namespace loopstall
