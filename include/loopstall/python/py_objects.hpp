// Copying str and bytes objects out of another process. Every length is
// checked against a cap before anything is read; a wrong type (when the type
// object's address is known) or an unsupported layout gives nullopt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loopstall/process_memory.hpp"
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

// Addresses of the type objects in the target (0 = unknown: skip the check).
struct PyTypeAddrs {
  std::uint64_t code = 0;
  std::uint64_t unicode = 0;
  std::uint64_t bytes = 0;
};

inline constexpr std::size_t kMaxStringChars = 4096;
inline constexpr std::size_t kMaxTableBytes = 1 << 20;

// A compact str (ASCII, UCS1, UCS2 or UCS4) as UTF-8; longer strings are cut at
// max_chars code points. Invalid code points become U+FFFD.
std::optional<std::string> read_unicode(const Memory& mem, const PyOffsets& o, std::uint64_t addr,
                                        std::uint64_t unicode_type = 0, std::size_t max_chars = kMaxStringChars);

// The payload of a bytes object of at most max_bytes bytes.
std::optional<std::vector<std::uint8_t>> read_bytes(const Memory& mem, const PyOffsets& o, std::uint64_t addr,
                                                    std::uint64_t bytes_type = 0,
                                                    std::size_t max_bytes = kMaxTableBytes);

// A user-space pointer that could be a live object: non-NULL, 8-aligned, below
// the x86-64 canonical user limit.
inline bool plausible_pointer(std::uint64_t p) {
  return p >= 4096 && (p & 7) == 0 && p < (1ull << 47);
}

}  // namespace loopstall::python
