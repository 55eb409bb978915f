// Open, size, load and attach the BPF programs; detach and free them.
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "engine_impl.hpp"

namespace loopstall {
namespace {

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  std::fputs("libbpf: ", stderr);
  return std::vfprintf(stderr, fmt, args);
}

std::uint32_t pid_max() {
  std::ifstream in("/proc/sys/kernel/pid_max");
  std::uint32_t v = 0;
  if (in >> v && v > 0) return v;
  return 4u << 20;  // PID_MAX_LIMIT on 64-bit
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
  // One bit per possible tid.
  bpf_map__set_max_entries(s->maps.loop_bits, pid_max() / 64 + 1);
  bpf_map__set_max_entries(s->maps.events, opt.ringbuf_bytes);
  s->data->threshold_ns = opt.threshold_ns;
  if (int err = loopstall_bpf__load(s)) throw_bpf_error("loading the BPF programs", err);

  // Every program but the epoll_pwait variants is required; kernels without
  // epoll_pwait2 (< 5.11) still work.
  struct Prog {
    bpf_program* prog;
    bpf_link** link;
    bool required;
  } progs[] = {
      {s->progs.epoll_wait_exit, &s->links.epoll_wait_exit, true},
      {s->progs.epoll_wait_enter, &s->links.epoll_wait_enter, true},
      {s->progs.epoll_pwait_exit, &s->links.epoll_pwait_exit, false},
      {s->progs.epoll_pwait_enter, &s->links.epoll_pwait_enter, false},
      {s->progs.epoll_pwait2_exit, &s->links.epoll_pwait2_exit, false},
      {s->progs.epoll_pwait2_enter, &s->links.epoll_pwait2_enter, false},
      {s->progs.sched_switch, &s->links.sched_switch, true},
      {s->progs.sched_wakeup, &s->links.sched_wakeup, true},
      {s->progs.sched_process_exit, &s->links.sched_process_exit, true},
      {s->progs.sched_process_exec, &s->links.sched_process_exec, true},
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
  open_ring_buffer(*impl_);
}

Engine::~Engine() = default;

int Engine::attached_programs() const {
  return impl_->attached;
}

}  // namespace loopstall

namespace loopstall {

const std::vector<std::pair<std::string, int>>& Engine::attach_failures() const {
  return impl_->attach_failures;
}

}  // namespace loopstall
