// Everything version-specific about reading a CPython stack from outside: one
// table of byte offsets (offsets.cpp: a row per field, a column per version).
// Plain integers only, so a copy can go into a BPF map and a BPF program can walk
// frames with the same numbers. x86-64 layouts of release (non-debug) builds.
#pragma once

#include <cstdint>

namespace loopstall::python {

// A field this version does not have.
inline constexpr std::uint32_t kNoField = 0xffffffffu;

// What a frame's instruction field holds.
enum class InstrKind : std::uint32_t {
  kLastiBytes = 0,      // 3.8/3.9 f_lasti: byte offset into co_code (-1 before start)
  kLastiCodeUnits = 1,  // 3.10 f_lasti: index of the 2-byte code unit (-1 before start)
  kPointer = 2,         // 3.11+ prev_instr / instr_ptr: address inside co_code_adaptive
};

// How co_lnotab / co_linetable is encoded.
enum class LineTableKind : std::uint32_t {
  kLnotab = 0,     // 3.8/3.9 (addr_delta, signed line_delta) byte pairs
  kLinetable = 1,  // 3.10 (byte_delta, line_delta, -128 = no line) pairs
  kLocations = 2,  // 3.11+ location table (varint entries, code units)
};

struct PyOffsets {
  std::uint32_t major = 0;
  std::uint32_t minor = 0;

  // _PyRuntimeState
  std::uint32_t runtime_interpreters_head = 0;     // interpreters.head
  std::uint32_t runtime_debug_offsets = kNoField;  // _Py_DebugOffsets at offset 0 (3.13+)
  std::uint32_t runtime_finalizing = kNoField;     // _finalizing: non-NULL once Py_Finalize began

  // PyInterpreterState
  std::uint32_t interp_next = 0;
  std::uint32_t interp_threads_head = 0;  // tstate_head (<=3.10) / threads.head

  // PyThreadState
  std::uint32_t tstate_next = 0;
  std::uint32_t tstate_thread_id = 0;                // pthread_t (pthread_self())
  std::uint32_t tstate_native_thread_id = kNoField;  // kernel tid, 3.11+
  std::uint32_t tstate_frame = kNoField;             // PyFrameObject* frame (<=3.10), current_frame (3.13)
  std::uint32_t tstate_cframe = kNoField;            // _PyCFrame* cframe (3.11/3.12)
  std::uint32_t cframe_current_frame = kNoField;     // _PyCFrame.current_frame

  // Frame: PyFrameObject (<=3.10) or _PyInterpreterFrame (3.11+)
  std::uint32_t frame_previous = 0;  // f_back / previous
  std::uint32_t frame_code = 0;      // f_code / f_executable
  std::uint32_t frame_instr = 0;     // f_lasti (int32) / prev_instr / instr_ptr (pointer)
  InstrKind instr_kind = InstrKind::kLastiBytes;
  std::uint32_t frame_owner = kNoField;   // char owner (3.11+)
  std::uint32_t owner_cstack = kNoField;  // FRAME_OWNED_BY_CSTACK: C entry shim, not Python (3.12+)

  // PyCodeObject
  std::uint32_t code_size = 0;           // bytes read from a code object in one go (covers every field below)
  std::uint32_t code_nunits = kNoField;  // ob_size: number of code units (3.11+)
  std::uint32_t code_filename = 0;
  std::uint32_t code_name = 0;
  std::uint32_t code_qualname = kNoField;  // 3.11+
  std::uint32_t code_firstlineno = 0;      // int32
  std::uint32_t code_linetable = 0;        // co_lnotab / co_linetable (bytes)
  LineTableKind line_table_kind = LineTableKind::kLnotab;
  std::uint32_t code_adaptive = kNoField;  // co_code_adaptive: first instruction (3.11+)

  // Objects
  std::uint32_t object_type = 8;           // ob_type
  std::uint32_t bytes_size = 16;           // PyBytesObject ob_size
  std::uint32_t bytes_data = 32;           // ob_sval
  std::uint32_t unicode_length = 16;       // PyASCIIObject.length (code points)
  std::uint32_t unicode_state = 32;        // state bitfield: kind bits 2..4, compact bit 5, ascii bit 6
  std::uint32_t unicode_ascii_data = 0;    // sizeof(PyASCIIObject): compact ASCII data follows
  std::uint32_t unicode_compact_data = 0;  // sizeof(PyCompactUnicodeObject): compact non-ASCII data

  bool operator==(const PyOffsets&) const = default;
};

// The table for a CPython version, or nullptr when unsupported (3.8 .. 3.13).
const PyOffsets* offsets_for(int major, int minor);

// Columns of the table in offsets.cpp.
extern const PyOffsets kPy38;
extern const PyOffsets kPy39;
extern const PyOffsets kPy310;
extern const PyOffsets kPy311;
extern const PyOffsets kPy312;
extern const PyOffsets kPy313;

}  // namespace loopstall::python
