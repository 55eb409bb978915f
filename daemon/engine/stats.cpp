// Counters the BPF side keeps about itself (per-CPU, summed here).
#include <bpf/bpf.h>

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
  s.samples = read(LS_STAT_SAMPLES);
  s.samples_skipped = read(LS_STAT_SAMPLES_SKIPPED);
  s.state_repairs = read(LS_STAT_STATE_REPAIRS);
  return s;
}

std::vector<ProgramStats> Engine::program_stats() {
  std::vector<ProgramStats> out;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, impl_->skel->obj) {
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0) continue;
    out.push_back({bpf_program__name(prog), info.run_cnt, info.run_time_ns});
  }
  return out;
}

}  // namespace loopstall
