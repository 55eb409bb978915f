// The maps userspace reads (loops, procs) and writes (procs decisions,
// ignore bits, threshold).
#include <bpf/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <vector>

#include "engine_impl.hpp"
#include "loopstall/clock.hpp"

namespace loopstall {
namespace {

// Every key/value of a hash map, in as few syscalls as the kernel allows.
// The buffers are kept between calls: the loops map is read every few ms
// and must not cost a fresh, zeroed allocation each time.
template <typename V>
class HashDump {
 public:
  // Returns how many entries are valid in keys()/values().
  std::size_t read(int fd, std::size_t max_entries) {
    if (cap_ < max_entries) {
      keys_ = std::make_unique_for_overwrite<std::uint32_t[]>(max_entries);
      values_ = std::make_unique_for_overwrite<V[]>(max_entries);
      cap_ = max_entries;
    }
    std::size_t total = 0;
    std::uint32_t out_batch = 0, in_batch = 0;
    bool first = true;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    while (total < max_entries) {
      auto count = static_cast<std::uint32_t>(max_entries - total);
      in_batch = out_batch;
      const int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, keys_.get() + total,
                                           values_.get() + total, &count, &opts);
      first = false;
      total += count;
      // ENOENT: done. Anything else (e.g. a concurrent delete invalidated
      // the cursor): keep what we got, the next scan sees the rest.
      if (err) break;
    }
    return total;
  }
  const std::uint32_t* keys() const { return keys_.get(); }
  const V* values() const { return values_.get(); }

 private:
  std::unique_ptr<std::uint32_t[]> keys_;
  std::unique_ptr<V[]> values_;
  std::size_t cap_ = 0;
};

// The ignore bit of tgid, shared with BPF (which clears it on exit/exec).
void set_ignore_bit(const MappedArray& bits, std::uint32_t tgid, bool on) {
  if (tgid / 64 >= bits.size()) return;
  std::atomic_ref<std::uint64_t> word(*bits.at<std::uint64_t>(tgid / 64));
  const std::uint64_t bit = 1ULL << (tgid % 64);
  if (on) {
    word.fetch_or(bit);
  } else {
    word.fetch_and(~bit);
  }
}

}  // namespace

MappedArray::~MappedArray() {
  if (base_) munmap(base_, bytes_);
}

void MappedArray::map(bpf_map* m, bool writable) {
  elem_size_ = (bpf_map__value_size(m) + 7) & ~std::size_t{7};  // array elements are 8-byte aligned
  entries_ = bpf_map__max_entries(m);
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  bytes_ = (elem_size_ * entries_ + page - 1) / page * page;
  void* p = mmap(nullptr, bytes_, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, bpf_map__fd(m), 0);
  if (p == MAP_FAILED) throw_bpf_error(std::string("mapping BPF map ") + bpf_map__name(m), errno);
  base_ = p;
}

void Engine::set_threshold_ns(std::uint64_t ns) {
  impl_->skel->data->threshold_ns = ns;
  impl_->skel->data->sample_after_ns = Tuning::evidence_after_ns_of(ns);
}

std::uint64_t Engine::threshold_ns() const {
  return impl_->skel->data->threshold_ns;
}

void Engine::set_proc_state(std::uint32_t tgid, ls_proc_state state) {
  const std::uint32_t v = state;
  // BPF_EXIST: if the process exited meanwhile its entry is gone; do not
  // re-create it (it would never be deleted).
  if (bpf_map__update_elem(impl_->skel->maps.procs, &tgid, sizeof tgid, &v, sizeof v, BPF_EXIST) == 0)
    set_ignore_bit(impl_->proc_ignore, tgid, state == LS_PROC_IGNORE);
}

void Engine::insert_proc_state(std::uint32_t tgid, ls_proc_state state) {
  const std::uint32_t v = state;
  if (bpf_map__update_elem(impl_->skel->maps.procs, &tgid, sizeof tgid, &v, sizeof v, BPF_ANY) == 0)
    set_ignore_bit(impl_->proc_ignore, tgid, state == LS_PROC_IGNORE);
}

void Engine::forget_proc(std::uint32_t tgid) {
  bpf_map__delete_elem(impl_->skel->maps.procs, &tgid, sizeof tgid, 0);
  set_ignore_bit(impl_->proc_ignore, tgid, false);
}

namespace {

// procs entries whose state satisfies keep(state).
template <typename Pred>
std::vector<std::uint32_t> procs_where(bpf_map* m, Pred keep) {
  HashDump<std::uint32_t> dump;
  const std::size_t n = dump.read(bpf_map__fd(m), bpf_map__max_entries(m));
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < n; ++i)
    if (keep(dump.values()[i])) out.push_back(dump.keys()[i]);
  return out;
}

}  // namespace

std::vector<std::uint32_t> Engine::known_procs() {
  return procs_where(impl_->skel->maps.procs, [](std::uint32_t) { return true; });
}

std::vector<std::uint32_t> Engine::pending_procs() {
  return procs_where(impl_->skel->maps.procs, [](std::uint32_t st) { return st == LS_PROC_PENDING; });
}

MapOccupancy Engine::map_occupancy() {
  MapOccupancy m;
  const std::size_t hwm = slots_in_use(*impl_);
  for (std::size_t slot = 1; slot < hwm; ++slot)
    m.loops += __atomic_load_n(&impl_->loops.at<ls_loop>(slot)->tid, __ATOMIC_RELAXED) != 0;
  bpf_map* procs = impl_->skel->maps.procs;
  bpf_map* py = impl_->skel->maps.py_threads;
  m.procs = HashDump<std::uint32_t>().read(bpf_map__fd(procs), bpf_map__max_entries(procs));
  m.py_threads = HashDump<ls_py_thread>().read(bpf_map__fd(py), bpf_map__max_entries(py));
  return m;
}

void Engine::set_py_thread(std::uint32_t tid, const ls_py_thread& t) {
  bpf_map__update_elem(impl_->skel->maps.py_threads, &tid, sizeof tid, &t, sizeof t, BPF_ANY);
}

void Engine::forget_py_thread(std::uint32_t tid) {
  bpf_map__delete_elem(impl_->skel->maps.py_threads, &tid, sizeof tid, 0);
}

std::optional<ls_loop> Engine::find_loop(std::uint32_t tid) const {
  const std::size_t hwm = slots_in_use(*impl_);
  for (std::size_t slot = 1; slot < hwm; ++slot) {
    const ls_loop* l = impl_->loops.at<ls_loop>(slot);
    if (__atomic_load_n(&l->tid, __ATOMIC_RELAXED) != tid) continue;
    ls_loop copy = *l;
    if (copy.tid == tid) return copy;
  }
  return std::nullopt;
}

std::uint64_t Engine::scan_loops(std::vector<ls_loop>& out) {
  // An ongoing report charges the time since a loop's last recorded switch
  // to its recorded state, up to the snapshot's time. A copy that took
  // long (the daemon was preempted halfway) would charge that gap to a
  // state that may have changed meanwhile: copy again. Copying 200 loops
  // takes microseconds, so a slow one is preemption, not work.
  constexpr std::uint64_t kFreshNs = 2'000'000;
  constexpr int kTries = 3;
  for (int attempt = 1;; ++attempt) {
    out.clear();
    const std::uint64_t t0 = monotonic_ns();
    const std::size_t hwm = slots_in_use(*impl_);
    for (std::size_t slot = 1; slot < hwm; ++slot) {
      const ls_loop* l = impl_->loops.at<ls_loop>(slot);
      // BPF keeps writing while we copy: a slot freed or reused meanwhile is
      // caught by its tid; torn counters of a running iteration only affect
      // an ongoing report's breakdown, which the next scan refreshes.
      if (__atomic_load_n(&l->tid, __ATOMIC_RELAXED) == 0) continue;
      out.push_back(*l);
      if (out.back().tid == 0) out.pop_back();
    }
    const std::uint64_t t1 = monotonic_ns();
    if (t1 - t0 <= kFreshNs || attempt == kTries) {
      free_released_slots(*impl_, t1);
      return t1;
    }
  }
}

}  // namespace loopstall
