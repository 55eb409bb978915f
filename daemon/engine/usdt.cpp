// CPython's gc__start/gc__done USDT probes, attached per binary for every
// process that maps it (pid -1): the kernel then also maintains the probes'
// semaphores in every such process, and detaching (on exit, or when the
// Engine is destroyed) decrements them again, so interpreters go back to
// skipping the probe sites.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine_impl.hpp"

namespace loopstall {

bool Engine::attach_gc_probes(const std::string& binary) {
  if (!impl_->usdt_tried.insert(binary).second) return false;
  auto* s = impl_->skel;
  bpf_link* start = bpf_program__attach_usdt(s->progs.gc_start, -1, binary.c_str(), "python", "gc__start", nullptr);
  if (!start) return false;  // no such probe in this file: the common case
  bpf_link* done = bpf_program__attach_usdt(s->progs.gc_done, -1, binary.c_str(), "python", "gc__done", nullptr);
  if (!done) {
    std::fprintf(stderr, "loopstall: warning: %s has gc__start but gc__done did not attach: %s\n", binary.c_str(),
                 std::strerror(errno));
    bpf_link__destroy(start);
    return false;
  }
  impl_->usdt_links.push_back(start);
  impl_->usdt_links.push_back(done);
  return true;
}

}  // namespace loopstall
