// Recognizing a return address: on x86-64 it follows a call instruction.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loopstall::native {

inline constexpr std::size_t kLongestCall = 7;  // FF /2 with SIB and disp32

// Whether code[0..n) — the bytes just before an address, code[n - 1] being
// the byte at address - 1 — ends with a call: E8 rel32, or FF /2 (call r/m64)
// in each encoded length. Prefixes (REX) before the opcode do not matter.
inline bool ends_with_call(const std::uint8_t* code, std::size_t n) {
  // at(k): the byte at address - k.
  auto at = [&](std::size_t k) { return code[n - k]; };
  // ModRM of FF /2 with the given mod, and whether rm selects a SIB byte.
  auto call_modrm = [](std::uint8_t modrm, int mod, bool sib) {
    return ((modrm >> 3) & 7) == 2 && (modrm >> 6) == mod && (((modrm & 7) == 4) == sib);
  };
  if (n >= 5 && at(5) == 0xe8) return true;  // call rel32
  if (n < 2) return false;
  // call reg; call [reg] (rm 5 with mod 0 is rip-relative, 6 bytes)
  if (at(2) == 0xff && (call_modrm(at(1), 3, false) || (call_modrm(at(1), 0, false) && (at(1) & 7) != 5))) return true;
  // call [reg + d8]; call [sib] (SIB base 5 with mod 0 has a disp32)
  if (n >= 3 && at(3) == 0xff && (call_modrm(at(2), 1, false) || (call_modrm(at(2), 0, true) && (at(1) & 7) != 5)))
    return true;
  // call [sib + d8]
  if (n >= 4 && at(4) == 0xff && call_modrm(at(3), 1, true)) return true;
  // call [reg + d32]; call [rip + d32]
  if (n >= 6 && at(6) == 0xff && (call_modrm(at(5), 2, false) || at(5) == 0x15)) return true;
  // call [sib + d32]; call [sib with base 5 + d32]
  if (n >= 7 && at(7) == 0xff && (call_modrm(at(6), 2, true) || (call_modrm(at(6), 0, true) && (at(5) & 7) == 5)))
    return true;
  return false;
}

}  // namespace loopstall::native
