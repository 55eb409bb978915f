// The python_frames fuzz target's input format: a version, a tid and byte regions placed in
// a 16 MiB window at 256-byte granularity, so that small integers in one
// region can point into another.
//   [0] version index (mod 6)   [1] flags   [2..5] tid (LE)
//   then repeated: slot u16 LE (addr = kFuzzBase + slot * 256), length u16 LE (capped), bytes
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fake_memory.hpp"

namespace loopstall::python::testing {

inline constexpr std::uint64_t kFuzzBase = 0x100000;  // the runtime lives here
inline constexpr std::size_t kMaxRegion = 16384;

enum FuzzFlags : std::uint8_t {
  kFlagTypes = 1,         // pass type-object addresses (enables type checks)
  kFlagDebugOffsets = 2,  // 3.13: let _Py_DebugOffsets from the input override the table
};

struct FuzzHeader {
  unsigned version = 0;
  std::uint8_t flags = 0;
  std::uint32_t tid = 0;
};

inline bool decode_fuzz_input(const std::uint8_t* data, std::size_t size, FuzzHeader& h, FakeMemory& mem) {
  if (size < 6) return false;
  h.version = data[0] % 6;
  h.flags = data[1];
  std::memcpy(&h.tid, data + 2, 4);
  std::size_t i = 6;
  while (i + 4 <= size) {
    const std::uint16_t slot = static_cast<std::uint16_t>(data[i] | data[i + 1] << 8);
    std::size_t len = static_cast<std::size_t>(data[i + 2] | data[i + 3] << 8);
    i += 4;
    len = std::min({len, size - i, kMaxRegion});
    mem.map(kFuzzBase + std::uint64_t{slot} * 256, std::vector<std::uint8_t>(data + i, data + i + len));
    i += len;
  }
  return true;
}

// The inverse, for seeds: regions must lie in the window, 256-aligned.
inline std::vector<std::uint8_t> encode_fuzz_input(const FuzzHeader& h, const FakeMemory& mem) {
  std::vector<std::uint8_t> out = {static_cast<std::uint8_t>(h.version), h.flags};
  for (int b = 0; b < 4; ++b) out.push_back(static_cast<std::uint8_t>(h.tid >> (8 * b)));
  for (const auto& [addr, bytes] : mem.regions()) {
    if (addr < kFuzzBase || (addr - kFuzzBase) % 256 != 0 || (addr - kFuzzBase) / 256 > 0xffff) continue;
    const auto slot = static_cast<std::uint16_t>((addr - kFuzzBase) / 256);
    const std::size_t len = std::min(bytes.size(), kMaxRegion);
    out.insert(out.end(), {static_cast<std::uint8_t>(slot), static_cast<std::uint8_t>(slot >> 8),
                           static_cast<std::uint8_t>(len), static_cast<std::uint8_t>(len >> 8)});
    out.insert(out.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
  }
  return out;
}

}  // namespace loopstall::python::testing
