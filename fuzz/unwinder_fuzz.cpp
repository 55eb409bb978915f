// The native unwinder over a corrupted or made-up stack: a real snapshot of
// this process (self_snapshot.hpp, taken once) is overwritten by the input, or the
// registers come from the input. Tagged words become addresses the unwinder
// cares about, so mutations reach real CFI: 0xC0DE<<48 | i<<32 | off -> an
// address in the i-th code mapping; 0x57AC<<48 | off -> stack_base + off.
// The result must be at most max_frames frames, in bounded time.
//   [0] known register mask  [1] max_frames  [2..3] patch offset (8-byte
//   words) [4] flags (1: registers from the input, 2: cut the stack at the
//   patch end)  [registers: 8 x u64 when flags&1]  patch bytes...
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/native/unwinder.hpp"
#include "loopstall/procfs.hpp"
#include "self_snapshot.hpp"

using namespace loopstall::native;

namespace {

struct Base {
  StackSnapshot snap;
  std::vector<Mapping> code;
};

const Base& base() {
  static const Base b = [] {
    auto snap = loopstall::native::test::capture_myself(16 * 1024);
    if (!snap) std::abort();
    Base out{std::move(*snap), {}};
    for (auto& m : parse_maps(loopstall::read_maps(static_cast<std::uint32_t>(::getpid())).value_or(""))) {
      if (m.executable) out.code.push_back(m);
    }
    if (out.code.empty() || out.snap.stack.empty()) std::abort();
    return out;
  }();
  return b;
}

std::uint64_t decode(std::uint64_t v, const Base& b, std::uint64_t stack_base) {
  switch (v >> 48) {
    case 0xC0DE: {
      const Mapping& m = b.code[((v >> 32) & 0xffff) % b.code.size()];
      return m.start + (v & 0xffffffff) % (m.end - m.start);
    }
    case 0x57AC: return stack_base + (v & 0xffff);
    default: return v;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const Base& b = base();
  StackSnapshot s = b.snap;
  s.regs.known = data[0];
  const std::size_t max_frames = data[1] % 65;
  const std::size_t patch_at = 8 * static_cast<std::size_t>(data[2] | data[3] << 8) % (s.stack.size() + 1);
  const std::uint8_t flags = data[4];
  std::size_t i = 5;
  if (flags & 1) {
    std::uint64_t r[8] = {};
    for (auto& v : r) {
      if (i + 8 > size) break;
      std::memcpy(&v, data + i, 8);
      v = decode(v, b, s.stack_base);
      i += 8;
    }
    s.regs = {r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], data[0]};
    s.stack_base = s.regs.sp;
  }
  const std::size_t patch_len = std::min(size - i, s.stack.size() - patch_at);
  std::memcpy(s.stack.data() + patch_at, data + i, patch_len);
  for (std::size_t w = patch_at & ~std::size_t{7}; w + 8 <= patch_at + patch_len; w += 8) {
    std::uint64_t v;
    std::memcpy(&v, s.stack.data() + w, 8);
    v = decode(v, b, s.stack_base);
    std::memcpy(s.stack.data() + w, &v, 8);
  }
  if (flags & 2) s.stack.resize(patch_at + patch_len);

  // Memory comes only from the snapshot and the ELF files, never from this
  // (live) process: a made-up address must not be read here.
  static NativeUnwinder unwinder({.max_processes = 1, .read_live_memory = false, .use_debug_files = false});
  const auto frames = unwinder.unwind_frames(::getpid(), s, max_frames);
  if (frames.size() > max_frames) std::abort();
  return 0;
}
