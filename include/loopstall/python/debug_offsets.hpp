// CPython 3.13+ publishes its own struct offsets in _Py_DebugOffsets at the
// start of _PyRuntime (cookie "xdebugpy"), for out-of-process debuggers. When
// present we prefer them over the static table: they are right even for an
// unusual build of the same minor version.
#pragma once

#include <cstdint>
#include <optional>

#include "loopstall/process_memory.hpp"
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

// The 3.13.0 layout of _Py_DebugOffsets (every field a uint64 offset or size).
struct DebugOffsets313 {
  char cookie[8];
  std::uint64_t version;  // PY_VERSION_HEX
  std::uint64_t free_threaded;
  struct {
    std::uint64_t size, finalizing, interpreters_head;
  } runtime_state;
  struct {
    std::uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil, gil_runtime_state,
        gil_runtime_state_enabled, gil_runtime_state_locked, gil_runtime_state_holder;
  } interpreter_state;
  struct {
    std::uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk, status;
  } thread_state;
  struct {
    std::uint64_t size, previous, executable, instr_ptr, localsplus, owner;
  } interpreter_frame;
  struct {
    std::uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames, localspluskinds,
        co_code_adaptive;
  } code_object;
  struct {
    std::uint64_t size, ob_type;
  } pyobject;
  struct {
    std::uint64_t size, tp_name, tp_repr, tp_flags;
  } type_object;
  struct {
    std::uint64_t size, ob_item, ob_size;
  } tuple_object, list_object;
  struct {
    std::uint64_t size, ma_keys, ma_values;
  } dict_object;
  struct {
    std::uint64_t size, ob_fval;
  } float_object;
  struct {
    std::uint64_t size, lv_tag, ob_digit;
  } long_object;
  struct {
    std::uint64_t size, ob_size, ob_sval;
  } bytes_object;
  struct {
    std::uint64_t size, state, length, asciiobject_size;
  } unicode_object;
  struct {
    std::uint64_t size, collecting;
  } gc;
};
static_assert(sizeof(DebugOffsets313) == 584, "matches pahole -C _Py_DebugOffsets (3.13.0)");

// `table` with every field _Py_DebugOffsets covers replaced by the target's own
// values. nullopt when the cookie or version does not match `table`, the build
// is free-threaded (different object layouts), or a value is implausible.
std::optional<PyOffsets> apply_debug_offsets(const DebugOffsets313& d, const PyOffsets& table);

// The raw _Py_DebugOffsets of the target, if `table`'s version has them and the cookie is there.
std::optional<DebugOffsets313> read_raw_debug_offsets(const Memory& mem, std::uint64_t runtime, const PyOffsets& table);

// Reads _Py_DebugOffsets from the target and applies it.
std::optional<PyOffsets> read_debug_offsets(const Memory& mem, std::uint64_t runtime, const PyOffsets& table);

}  // namespace loopstall::python
