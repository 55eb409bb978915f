// The ring buffer that carries stall, new-process and loop-exit events.
#include <cerrno>

#include "engine_impl.hpp"

namespace loopstall {
namespace {

int on_sample(void* ctx, void* data, size_t size) {
  auto* impl = static_cast<Engine::Impl*>(ctx);
  if (impl->handler && size >= sizeof(ls_event_hdr)) (*impl->handler)(data, size);
  return 0;
}

}  // namespace

void open_ring_buffer(Engine::Impl& impl) {
  impl.rb = ring_buffer__new(bpf_map__fd(impl.skel->maps.events), on_sample, &impl, nullptr);
  if (!impl.rb) throw_bpf_error("creating the ring buffer reader", errno);
}

int Engine::poll(int timeout_ms, const EventHandler& on_event) {
  impl_->handler = &on_event;
  const int n = ring_buffer__poll(impl_->rb, timeout_ms);
  impl_->handler = nullptr;
  if (n == -EINTR) return -1;
  if (n < 0) throw_bpf_error("reading the ring buffer", n);
  return n;
}

}  // namespace loopstall
