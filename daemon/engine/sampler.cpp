// The cpu-clock sampler: one software perf event per CPU, each running the
// `sample` program. The program itself decides, in one array lookup, whether
// the interrupted task is a loop thread inside a long iteration; everything
// else costs nothing more than the timer tick.
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine_impl.hpp"

namespace loopstall {

void setup_sampler(Engine::Impl& impl, std::uint64_t period_ns) {
  int failed_errno = 0;
  for (int cpu = 0; cpu < impl.ncpus; ++cpu) {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.sample_period = period_ns;  // fixed period: frequency mode under-samples here
    const long fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
      if (errno != ENODEV) failed_errno = errno;  // ENODEV: possible but offline CPU
      continue;
    }
    bpf_link* link = bpf_program__attach_perf_event(impl.skel->progs.sample, static_cast<int>(fd));
    if (!link) {
      failed_errno = errno;
      close(static_cast<int>(fd));
      continue;
    }
    impl.perf_fds.push_back(static_cast<int>(fd));
    impl.perf_links.push_back(link);
  }
  if (failed_errno) {
    // Stalls are still measured; on-CPU stalls lose their stacks.
    std::fprintf(stderr, "loopstall: warning: cpu-clock sampler not attached on every CPU: %s\n",
                 std::strerror(failed_errno));
    impl.attach_failures.emplace_back("sample", failed_errno);
  }
  if (!impl.perf_links.empty()) impl.attached++;
}

void Engine::set_sample_period_ns(std::uint64_t ns) {
  Impl& impl = *impl_;
  if (!impl.perf_links.empty()) impl.attached--;
  for (bpf_link* l : impl.perf_links) bpf_link__destroy(l);
  for (int fd : impl.perf_fds) close(fd);
  impl.perf_links.clear();
  impl.perf_fds.clear();
  std::erase_if(impl.attach_failures, [](const auto& f) { return f.first == "sample"; });
  if (ns) setup_sampler(impl, ns);
}

}  // namespace loopstall
