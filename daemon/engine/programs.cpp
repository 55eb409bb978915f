// Open, size, load and attach the BPF programs; detach and free them.
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <bpf/btf.h>

#include "engine_impl.hpp"

namespace loopstall {
namespace {

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // Most of libbpf's messages already start with "libbpf: ".
  if (std::strncmp(fmt, "libbpf: ", 8) != 0) std::fputs("libbpf: ", stderr);
  return std::vfprintf(stderr, fmt, args);
}

std::uint32_t pid_max() {
  std::ifstream in("/proc/sys/kernel/pid_max");
  std::uint32_t v = 0;
  if (in >> v && v > 0) return v;
  return 4u << 20;  // PID_MAX_LIMIT on 64-bit
}

// Whether the running kernel's BTF has raw tracepoint `name` (what a tp_btf
// program attaches to).
bool kernel_has_tracepoint(const char* name) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  const bool found = btf__find_by_name_kind(vmlinux, (std::string("btf_trace_") + name).c_str(), BTF_KIND_TYPEDEF) > 0;
  btf__free(vmlinux);
  return found;
}

}  // namespace

void throw_bpf_error(const std::string& what, int err) {
  if (err < 0) err = -err;
  std::string msg = what + ": " + std::strerror(err);
  if (err == EPERM || err == EACCES) msg += " (needs root, or CAP_BPF and CAP_PERFMON)";
  throw EngineError(msg);
}

Engine::Engine(const EngineOptions& opt) : impl_(std::make_unique<Impl>()) {
  probe_features();
  libbpf_set_print(libbpf_log);
  impl_->ncpus = libbpf_num_possible_cpus();
  if (impl_->ncpus <= 0) impl_->ncpus = 1;

  impl_->skel = loopstall_bpf__open();
  if (!impl_->skel) throw_bpf_error("opening the BPF object", errno);
  auto* s = impl_->skel;
  const std::uint32_t pids = pid_max();
  const std::uint32_t max_loops = std::clamp<std::uint32_t>(opt.max_loops, 2, 65535);
  bpf_map__set_max_entries(s->maps.loop_slots, pids / 4 + 1);    // four u16 slots per entry
  bpf_map__set_max_entries(s->maps.proc_ignore, pids / 64 + 1);  // one bit per tgid
  bpf_map__set_max_entries(s->maps.loops, max_loops);
  bpf_map__set_max_entries(s->maps.free_slots, max_loops);
  bpf_map__set_max_entries(s->maps.events, opt.ringbuf_bytes);
  s->data->threshold_ns = opt.tuning.threshold_ns();
  s->data->sample_after_ns = opt.tuning.evidence_after_ns();
  prepare_gc_probes(*impl_);
  // A tp_btf program for a tracepoint the kernel lacks fails the whole load.
  if (!kernel_has_tracepoint("sock_recv_length")) bpf_program__set_autoload(s->progs.sock_recv_length, false);
  if (int err = loopstall_bpf__load(s)) throw_bpf_error("loading the BPF programs", err);

  // Slot 0 means "not a loop"; push the others so that pops hand out low
  // slots first (the scan stops at the high-water mark).
  for (std::uint32_t slot = max_loops - 1; slot >= 1; --slot)
    if (int err = bpf_map__update_elem(s->maps.free_slots, nullptr, 0, &slot, sizeof slot, 0))
      throw_bpf_error("filling the free loop slots", err);
  impl_->loops.map(s->maps.loops, true);
  impl_->proc_ignore.map(s->maps.proc_ignore, true);
  impl_->loop_slots.map(s->maps.loop_slots, true);

  // Every program but the epoll_pwait variants and the socket receive hook is
  // required; kernels without epoll_pwait2 (< 5.11) still work. USDT and the sampler attach elsewhere.
  struct Prog {
    bpf_program* prog;
    bpf_link** link;
    bool required;
  } progs[] = {
      {s->progs.epoll_wait_enter, &s->links.epoll_wait_enter, true},
      {s->progs.epoll_pwait_enter, &s->links.epoll_pwait_enter, false},
      {s->progs.epoll_pwait2_enter, &s->links.epoll_pwait2_enter, false},
      {s->progs.sched_switch, &s->links.sched_switch, true},
      {s->progs.sched_wakeup, &s->links.sched_wakeup, true},
      {s->progs.sched_process_exit, &s->links.sched_process_exit, true},
      {s->progs.sched_process_exec, &s->links.sched_process_exec, true},
      // Churn only; sock:sock_recv_length is in kernels >= 6.4.
      {s->progs.sock_recv_length, &s->links.sock_recv_length, false},
  };
  for (auto& p : progs) {
    *p.link = bpf_program__attach(p.prog);
    if (!*p.link) {
      const int err = errno;
      if (p.required) throw_bpf_error(std::string("attaching ") + bpf_program__name(p.prog), err);
      std::fprintf(stderr, "loopstall: warning: %s not attached: %s\n", bpf_program__name(p.prog), std::strerror(err));
      impl_->attach_failures.emplace_back(bpf_program__name(p.prog), err);
      continue;
    }
    impl_->attached++;
  }
  if (const auto period = opt.tuning.sample_period_ns()) setup_sampler(*impl_, period);
  open_ring_buffer(*impl_);
}

Engine::Impl::~Impl() {
  for (bpf_link* l : usdt_links) bpf_link__destroy(l);
  for (int fd : usdt_link_fds) close(fd);
  for (bpf_link* l : perf_links) bpf_link__destroy(l);
  for (int fd : perf_fds) close(fd);
  if (rb) ring_buffer__free(rb);
  if (skel) loopstall_bpf__destroy(skel);  // detaches every program
}

Engine::~Engine() = default;

std::unique_ptr<LoopEngine> make_bpf_engine(const EngineOptions& opt) {
  return std::make_unique<Engine>(opt);
}

int Engine::attached_programs() const {
  return impl_->attached;
}

}  // namespace loopstall

namespace loopstall {

const std::vector<std::pair<std::string, int>>& Engine::attach_failures() const {
  return impl_->attach_failures;
}

}  // namespace loopstall
