#include "loopstall/python/frame_walker.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "loopstall/python/py_objects.hpp"

namespace loopstall::python {
namespace {

std::optional<std::uint64_t> read_ptr(const Memory& mem, std::uint64_t addr) {
  const auto p = mem.read_as<std::uint64_t>(addr);
  if (!p || !plausible_pointer(*p)) return std::nullopt;
  return p;
}

template <typename T>
T field(const std::uint8_t* block, std::uint32_t off) {
  T v{};
  std::memcpy(&v, block + off, sizeof v);
  return v;
}

// The frame addresses a walk has visited (a cycle ends it): open
// addressing in one allocation sized for the walk's bound, where a node-based
// set cost an allocation per frame. Addresses are plausible pointers, never 0.
class VisitedFrames {
 public:
  explicit VisitedFrames(std::size_t max_steps) : slots_(std::bit_ceil(2 * max_steps + 2), 0) {}
  // False if addr was visited already.
  bool insert(std::uint64_t addr) {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = (addr >> 4) * 0x9E3779B97F4A7C15ULL >> 20 & mask;; i = (i + 1) & mask) {
      if (slots_[i] == addr) return false;
      if (slots_[i] == 0) {
        slots_[i] = addr;
        return true;
      }
    }
  }

 private:
  std::vector<std::uint64_t> slots_;
};

std::uint32_t end_of(std::uint32_t off, std::uint32_t size) {
  return off == kNoField ? 0 : off + size;
}

std::optional<std::uint64_t> current_frame(const Memory& mem, const PyOffsets& o, std::uint64_t tstate) {
  if (o.tstate_cframe != kNoField) {
    const auto cframe = read_ptr(mem, tstate + o.tstate_cframe);
    if (!cframe) return std::nullopt;
    return read_ptr(mem, *cframe + o.cframe_current_frame);
  }
  if (o.tstate_frame == kNoField) return std::nullopt;
  return read_ptr(mem, tstate + o.tstate_frame);
}

// 3.11+ frames live in the thread's data stack, each caller just below its
// callee: one read of the bytes below the innermost frame serves most of a
// deep walk, instead of one process_vm_readv per frame (~0.6 us each).
// Frames elsewhere (generators, 3.10's heap frame objects) miss the window
// and are read alone; the window is reloaded a bounded number of times.
class FrameReader {
 public:
  FrameReader(const Memory& mem, bool windowed) : mem_(mem), loads_left_(windowed ? kMaxLoads : 0) {}

  bool read(std::uint64_t addr, std::uint8_t* out, std::size_t n) {
    if (!inside(addr, n) && loads_left_ > 0) load_below(addr, n);
    if (inside(addr, n)) {
      std::memcpy(out, window_.data() + (addr - base_), n);
      return true;
    }
    return mem_.read(addr, out, n);
  }

 private:
  static constexpr std::uint64_t kPage = Memory::kPageSize;
  static constexpr std::uint64_t kWindow = 16 * 1024;  // CPython's data stack chunk
  static constexpr int kMaxLoads = 4;

  bool inside(std::uint64_t addr, std::size_t n) const {
    return addr >= base_ && addr - base_ <= size_ && n <= size_ - (addr - base_);
  }

  // The pages from kWindow below [addr, addr + n) to its end; when the lower
  // pages are not mapped, the pages of the frame alone.
  void load_below(std::uint64_t addr, std::size_t n) {
    --loads_left_;
    size_ = 0;
    const std::uint64_t end = (addr + n + kPage - 1) & ~(kPage - 1);
    if (end < addr || end < kWindow + kPage) return;
    for (const std::uint64_t start : {end - kWindow, addr & ~(kPage - 1)}) {
      window_.resize(end - start);
      if (mem_.read(start, window_.data(), window_.size())) {
        base_ = start;
        size_ = window_.size();
        return;
      }
    }
  }

  // One buffer per thread for every walk: a fresh 16 KiB allocation per
  // walk made glibc consolidate its free lists each time.
  static std::vector<std::uint8_t>& buffer() {
    thread_local std::vector<std::uint8_t> b;
    return b;
  }

  const Memory& mem_;
  int loads_left_;
  std::vector<std::uint8_t>& window_ = buffer();
  std::uint64_t base_ = 0;
  std::size_t size_ = 0;
};

}  // namespace

void for_each_thread(const Memory& mem, std::uint64_t runtime, const PyOffsets& o,
                     const std::function<bool(const ThreadEntry&)>& visit) {
  const bool native = o.tstate_native_thread_id != kNoField;
  // One read per thread state when the fields are close together (always, with the static tables).
  const std::uint32_t block_size = std::max(
      {end_of(o.tstate_next, 8), end_of(o.tstate_thread_id, 8), native ? end_of(o.tstate_native_thread_id, 8) : 0});
  std::array<std::uint8_t, 256> block{};
  const bool one_read = block_size <= block.size();
  std::unordered_set<std::uint64_t> seen;
  std::size_t threads = 0;  // across all interpreters: a hostile list costs at most kMaxThreads reads
  auto interp = read_ptr(mem, runtime + o.runtime_interpreters_head);
  for (std::size_t i = 0; interp && i < kMaxInterpreters && seen.insert(*interp).second; ++i) {
    auto tstate = read_ptr(mem, *interp + o.interp_threads_head);
    for (; tstate && threads < kMaxThreads && seen.insert(*tstate).second; ++threads) {
      ThreadEntry e{.tstate = *tstate};
      std::uint64_t next = 0;
      if (one_read) {
        if (!mem.read(*tstate, block.data(), block_size)) break;
        e.thread_id = field<std::uint64_t>(block.data(), o.tstate_thread_id);
        if (native) e.native_thread_id = field<std::uint64_t>(block.data(), o.tstate_native_thread_id);
        next = field<std::uint64_t>(block.data(), o.tstate_next);
      } else {
        e.thread_id = mem.read_as<std::uint64_t>(*tstate + o.tstate_thread_id).value_or(0);
        if (native) e.native_thread_id = mem.read_as<std::uint64_t>(*tstate + o.tstate_native_thread_id).value_or(0);
        next = mem.read_as<std::uint64_t>(*tstate + o.tstate_next).value_or(0);
      }
      if (!visit(e)) return;
      tstate = plausible_pointer(next) ? std::optional<std::uint64_t>(next) : std::nullopt;
    }
    interp = read_ptr(mem, *interp + o.interp_next);
  }
}

std::optional<std::uint64_t> find_thread_state(const Memory& mem, std::uint64_t runtime, const PyOffsets& o,
                                               std::uint32_t tid, std::uint32_t pthread_tid_offset) {
  if (o.tstate_native_thread_id == kNoField && pthread_tid_offset == kNoField) return std::nullopt;
  std::optional<std::uint64_t> found;
  for_each_thread(mem, runtime, o, [&](const ThreadEntry& e) {
    bool match = false;
    if (o.tstate_native_thread_id != kNoField) {
      match = e.native_thread_id == tid;
    } else if (plausible_pointer(e.thread_id)) {
      const auto t = mem.read_as<std::int32_t>(e.thread_id + pthread_tid_offset);
      match = t && static_cast<std::uint32_t>(*t) == tid;
    }
    if (match) found = e.tstate;
    return !match;
  });
  return found;
}

std::vector<RawFrame> walk_frames(const Memory& mem, const PyOffsets& o, std::uint64_t tstate, std::size_t max_depth,
                                  std::uint64_t code_type) {
  std::vector<RawFrame> frames;
  const bool pointer_instr = o.instr_kind == InstrKind::kPointer;
  // Everything needed from a frame comes from one read.
  const std::uint32_t block_size = std::max({end_of(o.frame_previous, 8), end_of(o.frame_code, 8),
                                             end_of(o.frame_instr, pointer_instr ? 8 : 4), end_of(o.frame_owner, 1)});
  std::array<std::uint8_t, 256> block{};
  if (block_size > block.size() || !plausible_pointer(tstate)) return frames;

  // The owner field exists from 3.11 on, where frames are in the data stack.
  FrameReader reader(mem, o.frame_owner != kNoField);
  // Skipped shim frames count too, so the loop is bounded even if all are shims.
  const std::size_t max_steps = 2 * max_depth + 8;
  VisitedFrames seen(max_steps);
  auto frame = current_frame(mem, o, tstate);
  for (std::size_t step = 0; frame && frames.size() < max_depth && step < max_steps; ++step) {
    if (!seen.insert(*frame)) break;  // cycle
    if (!reader.read(*frame, block.data(), block_size)) break;
    const auto code = field<std::uint64_t>(block.data(), o.frame_code);
    const bool shim = o.frame_owner != kNoField && o.owner_cstack != kNoField &&
                      block[o.frame_owner] == static_cast<std::uint8_t>(o.owner_cstack);
    if (!shim) {
      if (!plausible_pointer(code)) break;
      if (code_type != 0) {
        const auto type = mem.read_as<std::uint64_t>(code + o.object_type);
        if (!type || *type != code_type) break;
      }
      const std::uint64_t instr =
          pointer_instr
              ? field<std::uint64_t>(block.data(), o.frame_instr)
              : static_cast<std::uint64_t>(static_cast<std::int64_t>(field<std::int32_t>(block.data(), o.frame_instr)));
      frames.push_back({code, instr});
    }
    const auto prev = field<std::uint64_t>(block.data(), o.frame_previous);
    if (prev == 0 || !plausible_pointer(prev)) break;
    frame = prev;
  }
  return frames;
}

}  // namespace loopstall::python
