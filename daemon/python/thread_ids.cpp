#include "loopstall/python/thread_ids.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "loopstall/procfs.hpp"
#include "loopstall/python/frame_walker.hpp"
#include "loopstall/python/py_objects.hpp"

namespace loopstall::python {
namespace {

// glibc 2.36's struct pthread is 2368 bytes; the tid sits well inside the first 2 KiB.
constexpr std::size_t kSearchBytes = 2048;

}  // namespace

std::optional<std::uint32_t> pthread_tid_offset_from_descriptor(const Memory& mem, std::uint64_t descriptor_addr) {
  std::array<std::uint32_t, 3> d{};  // {size in bits, element count, offset}
  if (!mem.read(descriptor_addr, d.data(), sizeof d)) return std::nullopt;
  if (d[0] != 32 || d[1] != 1 || d[2] > kSearchBytes || d[2] % 4 != 0) return std::nullopt;
  return d[2];
}

std::optional<std::uint32_t> pthread_tid_offset_by_search(const Memory& mem, std::uint64_t runtime, const PyOffsets& o,
                                                          pid_t pid, const std::set<std::uint32_t>& live) {
  std::vector<std::uint64_t> pthreads;
  for_each_thread(mem, runtime, o, [&](const ThreadEntry& e) {
    if (plausible_pointer(e.thread_id)) pthreads.push_back(e.thread_id);
    return pthreads.size() < 256;
  });
  // Candidate offsets: where some thread's struct holds the pid itself (the main thread, tid == pid) ...
  std::vector<std::uint32_t> candidates;
  std::vector<std::array<std::int32_t, kSearchBytes / 4>> blocks(pthreads.size());
  std::vector<bool> readable(pthreads.size());
  for (std::size_t i = 0; i < pthreads.size(); ++i) {
    readable[i] = mem.read(pthreads[i], blocks[i].data(), kSearchBytes);
    // x86-64 TCB: header.self (offset 16) points back at the struct; rules out non-pthread_t values.
    std::uint64_t self = 0;
    if (readable[i]) std::memcpy(&self, reinterpret_cast<const std::uint8_t*>(blocks[i].data()) + 16, sizeof self);
    readable[i] = readable[i] && self == pthreads[i];
  }
  for (std::size_t i = 0; i < pthreads.size(); ++i) {
    if (!readable[i]) continue;
    for (std::size_t k = 0; k < blocks[i].size(); ++k) {
      if (blocks[i][k] == pid) candidates.push_back(static_cast<std::uint32_t>(4 * k));
    }
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  // ... and where every other thread's struct holds one of the live tids, each a different one.
  for (const std::uint32_t off : candidates) {
    std::set<std::int32_t> used;
    bool ok = true;
    for (std::size_t i = 0; i < pthreads.size() && ok; ++i) {
      if (!readable[i]) continue;
      const std::int32_t v = blocks[i][off / 4];
      ok = v > 0 && live.count(static_cast<std::uint32_t>(v)) && used.insert(v).second;
    }
    if (ok) return off;
  }
  return std::nullopt;
}

std::set<std::uint32_t> live_tids(pid_t pid) {
  std::set<std::uint32_t> tids;
  if (pid <= 0) return tids;
  for (const auto& [ours, theirs] : innermost_tids(static_cast<std::uint32_t>(pid))) tids.insert(theirs);
  return tids;
}

}  // namespace loopstall::python
