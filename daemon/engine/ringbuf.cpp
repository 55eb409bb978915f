// The ring buffer that carries stall, new-process, loop-exit and sample events.
#include <cerrno>

#include "engine_impl.hpp"
#include "loopstall/clock.hpp"

namespace loopstall {
namespace {

// libbpf's poll returns only once a pass over the ring finds nothing new:
// records arriving faster than they are handled (a capture at 1 ms on a busy
// host) kept it, and so the whole detector loop, there for minutes. A poll
// stops after this long; what is left waits for the next one, and if the
// ring fills meanwhile BPF counts the drops.
constexpr std::uint64_t kMaxPollNs = 10'000'000;
// What a callback returns to make libbpf stop (after this record).
constexpr int kPollBudgetSpent = -ECANCELED;

// libbpf calls this for every record, whatever its type (ls_event_hdr).
int on_record(void* ctx, void* data, size_t size) {
  auto* impl = static_cast<Engine::Impl*>(ctx);
  const std::uint64_t now = monotonic_ns();
  if (!impl->poll_first_ns) impl->poll_first_ns = now;
  if (impl->handler && size >= sizeof(ls_event_hdr)) (*impl->handler)(data, size);
  ++impl->poll_handled;
  return now - impl->poll_first_ns >= kMaxPollNs ? kPollBudgetSpent : 0;
}

}  // namespace

void open_ring_buffer(Engine::Impl& impl) {
  impl.rb = ring_buffer__new(bpf_map__fd(impl.skel->maps.events), on_record, &impl, nullptr);
  if (!impl.rb) throw_bpf_error("creating the ring buffer reader", errno);
}

int Engine::poll(int timeout_ms, const EventHandler& on_event) {
  impl_->handler = &on_event;
  impl_->poll_handled = 0;
  impl_->poll_first_ns = 0;
  const int n = ring_buffer__poll(impl_->rb, timeout_ms);
  impl_->handler = nullptr;
  if (n == kPollBudgetSpent) return impl_->poll_handled;
  if (n == -EINTR) return -1;
  if (n < 0) throw_bpf_error("reading the ring buffer", n);
  return n;
}

}  // namespace loopstall
