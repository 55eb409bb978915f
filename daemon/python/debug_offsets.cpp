#include "loopstall/python/debug_offsets.hpp"

#include <algorithm>
#include <cstring>

namespace loopstall::python {
namespace {

// Offsets beyond this are garbage (the largest real one, _is.threads, is ~7 KiB).
constexpr std::uint64_t kMaxOffset = 1 << 20;

// limit: the size of the struct the field is in, as the target says; never
// above kMaxOffset, so that offset + 8 cannot wrap in 32 bits.
bool set(std::uint32_t& field, std::uint64_t value, std::uint64_t limit = kMaxOffset) {
  if (value >= limit || value >= kMaxOffset) return false;
  field = static_cast<std::uint32_t>(value);
  return true;
}

}  // namespace

std::optional<PyOffsets> apply_debug_offsets(const DebugOffsets313& d, const PyOffsets& table) {
  if (std::memcmp(d.cookie, "xdebugpy", 8) != 0) return std::nullopt;
  if ((d.version >> 24) != table.major || ((d.version >> 16) & 0xff) != table.minor) return std::nullopt;
  if (d.free_threaded != 0) return std::nullopt;

  PyOffsets o = table;
  // The struct sizes bound each field so one read of a block covers it.
  const bool ok =
      set(o.runtime_interpreters_head, d.runtime_state.interpreters_head) &&
      set(o.runtime_finalizing, d.runtime_state.finalizing) && set(o.interp_next, d.interpreter_state.next) &&
      set(o.interp_threads_head, d.interpreter_state.threads_head) && set(o.tstate_next, d.thread_state.next) &&
      set(o.tstate_thread_id, d.thread_state.thread_id) &&
      set(o.tstate_native_thread_id, d.thread_state.native_thread_id) &&
      set(o.tstate_frame, d.thread_state.current_frame) &&
      set(o.frame_previous, d.interpreter_frame.previous, d.interpreter_frame.size) &&
      set(o.frame_code, d.interpreter_frame.executable, d.interpreter_frame.size) &&
      set(o.frame_instr, d.interpreter_frame.instr_ptr, d.interpreter_frame.size) &&
      set(o.frame_owner, d.interpreter_frame.owner, d.interpreter_frame.size) &&
      set(o.code_filename, d.code_object.filename, d.code_object.size) &&
      set(o.code_name, d.code_object.name, d.code_object.size) &&
      set(o.code_qualname, d.code_object.qualname, d.code_object.size) &&
      set(o.code_linetable, d.code_object.linetable, d.code_object.size) &&
      set(o.code_firstlineno, d.code_object.firstlineno, d.code_object.size) &&
      set(o.code_adaptive, d.code_object.co_code_adaptive, d.code_object.size) &&
      set(o.object_type, d.pyobject.ob_type, d.pyobject.size) && set(o.bytes_size, d.bytes_object.ob_size) &&
      set(o.bytes_data, d.bytes_object.ob_sval) && set(o.unicode_length, d.unicode_object.length) &&
      set(o.unicode_state, d.unicode_object.state) && set(o.unicode_ascii_data, d.unicode_object.asciiobject_size);
  if (!ok) return std::nullopt;
  // Not published: the cframe indirection is gone for good, the compact unicode
  // header is the ASCII one plus utf8_length and utf8, and code_size must cover
  // everything read from a code object, its type pointer too.
  o.tstate_cframe = kNoField;
  o.unicode_compact_data = o.unicode_ascii_data + 16;
  o.code_size = std::max({o.code_adaptive, o.code_filename + 8, o.code_name + 8, o.code_qualname + 8,
                          o.code_linetable + 8, o.code_firstlineno + 4, o.object_type + 8});
  return o;
}

std::optional<DebugOffsets313> read_raw_debug_offsets(const Memory& mem, std::uint64_t runtime,
                                                      const PyOffsets& table) {
  if (table.runtime_debug_offsets == kNoField) return std::nullopt;
  DebugOffsets313 d{};
  if (!mem.read(runtime + table.runtime_debug_offsets, &d, sizeof d)) return std::nullopt;
  if (std::memcmp(d.cookie, "xdebugpy", 8) != 0) return std::nullopt;
  return d;
}

std::optional<PyOffsets> read_debug_offsets(const Memory& mem, std::uint64_t runtime, const PyOffsets& table) {
  const auto d = read_raw_debug_offsets(mem, runtime, table);
  if (!d) return std::nullopt;
  return apply_debug_offsets(*d, table);
}

}  // namespace loopstall::python
