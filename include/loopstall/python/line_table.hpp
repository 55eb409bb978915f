// CPython line-number tables decoded as pure functions: the table bytes (copied
// out of the target, hence untrusted), co_firstlineno and the byte offset of the
// instruction in the bytecode give the source line. Mirrors PyCode_Addr2Line.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

// 3.8/3.9 co_lnotab: (addr_delta, signed line_delta) pairs.
std::optional<int> lnotab_line(std::span<const std::uint8_t> table, int firstlineno, std::int64_t offset);

// 3.10 co_linetable: (byte_delta, line_delta) pairs; line_delta -128 means "no line".
std::optional<int> linetable310_line(std::span<const std::uint8_t> table, int firstlineno, std::int64_t offset);

// 3.11+ location table (Objects/locations.md): entries of 1..8 code units with varint payloads.
std::optional<int> locations_line(std::span<const std::uint8_t> table, int firstlineno, std::int64_t offset);

// Dispatch on the table kind. offset < 0 (frame not started) gives firstlineno, as CPython does;
// nullopt when the instruction has no line or lies beyond the table.
std::optional<int> line_for_offset(LineTableKind kind, std::span<const std::uint8_t> table, int firstlineno,
                                   std::int64_t offset);

}  // namespace loopstall::python
