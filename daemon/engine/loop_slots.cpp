// Loop slots owned from userspace: adopting a thread BPF has not seen start
// its iteration (we attached while it was inside one, or asleep in
// epoll_wait), and taking back the slots of a process we ignore. BPF hands
// out slots too (new_loop); both publish a slot in `loop_slots` with a
// compare-and-swap of the whole u64 element, so neither loses the other's
// update of a neighbouring tid.
#include <bpf/bpf.h>

#include <atomic>
#include <cstring>

#include "engine_impl.hpp"
#include "loopstall/clock.hpp"

namespace loopstall {
namespace {

// A slot released is kept out of free_slots this long.
constexpr std::uint64_t kSlotGraceNs = 50'000'000;

std::uint64_t* word_of(const Engine::Impl& impl, std::uint32_t tid) {
  if (tid / 4 >= impl.loop_slots.size()) return nullptr;
  return impl.loop_slots.at<std::uint64_t>(tid / 4);
}

unsigned shift_of(std::uint32_t tid) {
  return (tid & 3) * 16;
}

std::uint32_t slot_in(std::uint64_t word, std::uint32_t tid) {
  return static_cast<std::uint32_t>((word >> shift_of(tid)) & 0xffff);
}

void push_free(const Engine::Impl& impl, std::uint32_t slot) {
  bpf_map__update_elem(impl.skel->maps.free_slots, nullptr, 0, &slot, sizeof slot, 0);
}

}  // namespace

bool Engine::is_loop(std::uint32_t tid) const {
  const std::uint64_t* w = word_of(*impl_, tid);
  return w && slot_in(__atomic_load_n(w, __ATOMIC_ACQUIRE), tid) != 0;
}

bool Engine::adopt_loop(const ls_loop& init) {
  std::uint64_t* w = word_of(*impl_, init.tid);
  if (!w || init.tid == 0 || is_loop(init.tid)) return false;
  std::uint32_t slot = 0;
  if (bpf_map__lookup_and_delete_elem(impl_->skel->maps.free_slots, nullptr, 0, &slot, sizeof slot, 0) != 0)
    return false;
  if (slot == 0 || slot >= impl_->loops.size()) return false;
  // Set up the slot before anyone can find it.
  ls_loop* l = impl_->loops.at<ls_loop>(slot);
  std::memcpy(l, &init, sizeof *l);
  l->syscalls[LS_MAX_SYSCALLS].nr = LS_SYSCALL_OTHER;
  std::atomic_thread_fence(std::memory_order_release);
  std::atomic_ref<std::uint32_t> hwm(impl_->skel->data->slots_hwm);
  for (std::uint32_t cur = hwm.load(); cur <= slot && !hwm.compare_exchange_weak(cur, slot + 1);) {
  }
  std::atomic_ref<std::uint64_t> word(*w);
  std::uint64_t old = word.load();
  while (slot_in(old, init.tid) == 0) {
    if (word.compare_exchange_weak(old, old | (std::uint64_t{slot} << shift_of(init.tid)))) return true;
  }
  // BPF made it a loop meanwhile (it called epoll_wait): BPF's slot wins.
  std::atomic_ref<std::uint32_t>(l->tid).store(0);
  push_free(*impl_, slot);
  return false;
}

void Engine::release_loops(std::uint32_t tgid) {
  const std::size_t hwm = slots_in_use(*impl_);
  const std::uint64_t now = monotonic_ns();
  for (std::uint32_t slot = 1; slot < hwm; ++slot) {
    ls_loop* l = impl_->loops.at<ls_loop>(slot);
    const std::uint32_t tid = std::atomic_ref<std::uint32_t>(l->tid).load();
    if (tid == 0 || std::atomic_ref<std::uint32_t>(l->tgid).load() != tgid) continue;
    std::uint64_t* w = word_of(*impl_, tid);
    if (!w) continue;
    std::atomic_ref<std::uint64_t> word(*w);
    std::uint64_t old = word.load();
    bool taken = false;
    // Only if tid still points here (it may have exited, and BPF freed and
    // reused the slot).
    while (slot_in(old, tid) == slot) {
      if (word.compare_exchange_weak(old, old & ~(std::uint64_t{0xffff} << shift_of(tid)))) {
        taken = true;
        break;
      }
    }
    if (!taken) continue;
    __atomic_store_n(&l->iter_start_ns, 0, __ATOMIC_RELAXED);
    std::atomic_ref<std::uint32_t>(l->tid).store(0);
    impl_->slots_to_free.emplace_back(slot, now);
  }
}

void free_released_slots(Engine::Impl& impl, std::uint64_t now_ns) {
  std::erase_if(impl.slots_to_free, [&](const auto& s) {
    if (now_ns - s.second < kSlotGraceNs) return false;
    push_free(impl, s.first);
    return true;
  });
}

}  // namespace loopstall
