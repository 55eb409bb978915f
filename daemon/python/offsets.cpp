// Every CPython layout loopstall reads, as one table: a row per PyOffsets
// field, a column per minor version (x86-64, release builds, GIL).
//
// Provenance: pahole over the DWARF of each pyenv build,
//   pahole -C S ~/.pyenv/versions/V/lib/libpython3.X.so.1.0
// for S in pyruntimestate _is _ts PyCodeObject PyASCIIObject PyCompactUnicodeObject, plus _frame (<=3.10),
// pythreads + _PyInterpreterFrame (3.11+), _PyCFrame (3.11/3.12); `struct PyCodeObject` from `pahole FILE`
// where PyCodeObject is a typedef (3.9+). Builds read: 3.8.18, 3.9.18, 3.10.13, 3.11.7 (and Debian's
// static 3.11.2, checked live), 3.12.1, 3.13.0. A "list head" row is the list's offset + 8 (its `head`).
// 3.13 also publishes most rows in _Py_DebugOffsets (`pahole -E -C _Py_DebugOffsets`), which
// debug_offsets.cpp prefers at run time; this column is the fallback and what the live test compares.
//
// What changed between versions (docs/python-stacks.md, "Per version"):
//   3.9  = 3.8 (3.8 calls _finalizing `finalizing`).
//   3.10 _frame.f_lasti moved to 96 and counts 2-byte code units; co_lnotab became co_linetable (same slot).
//        _ts.cframe exists but tstate->frame is still the frame chain.
//   3.11 _PyInterpreterFrame through tstate->cframe->current_frame; prev_instr is a pointer into
//        co_code_adaptive; native_thread_id and co_qualname appear; no C-stack shims (is_entry marks them).
//   3.12 f_code moved to 0, previous to 8; shim frames owned by the C stack (owner 3) are skipped;
//        PyASCIIObject lost wstr (40 / compact 56).
//   3.13 tstate->current_frame directly (no cframe); f_executable; instr_ptr; _Py_DebugOffsets at 0.
#include <array>
#include <cstddef>

#include "loopstall/python/offsets.hpp"

namespace loopstall::python {
namespace {

constexpr std::size_t kVersions = 6;  // 3.8 .. 3.13
constexpr int kFirstMinor = 8;
constexpr std::uint32_t N = kNoField;  // the version has no such field

struct Row {
  std::uint32_t PyOffsets::*field;
  std::array<std::uint32_t, kVersions> value;
};

// clang-format off
constexpr Row kRows[] = {
    //                                             3.8  3.9 3.10 3.11 3.12  3.13
    {&PyOffsets::runtime_interpreters_head,      {  32,  32,  32,  40,  40,  632}},
    {&PyOffsets::runtime_debug_offsets,          {   N,   N,   N,   N,   N,    0}},
    {&PyOffsets::runtime_finalizing,             {  16,  16,  16,  24,  24,  608}},
    {&PyOffsets::interp_next,                    {   0,   0,   0,   0,   0, 7264}},
    {&PyOffsets::interp_threads_head,            {   8,   8,   8,  16,  72, 7344}},  // tstate_head / threads.head
    {&PyOffsets::tstate_next,                    {   8,   8,   8,   8,   8,    8}},
    {&PyOffsets::tstate_thread_id,               { 176, 176, 176, 152, 136,  152}},  // pthread_t
    {&PyOffsets::tstate_native_thread_id,        {   N,   N,   N, 160, 144,  160}},
    {&PyOffsets::tstate_frame,                   {  24,  24,  24,   N,   N,   72}},  // frame / current_frame
    {&PyOffsets::tstate_cframe,                  {   N,   N,   N,  56,  56,    N}},
    {&PyOffsets::cframe_current_frame,           {   N,   N,   N,   8,   0,    N}},
    {&PyOffsets::frame_previous,                 {  24,  24,  24,  48,   8,    8}},  // f_back / previous
    {&PyOffsets::frame_code,                     {  32,  32,  32,  32,   0,    0}},  // f_code / f_executable
    {&PyOffsets::frame_instr,                    { 104, 104,  96,  56,  56,   56}},  // f_lasti / prev_instr / instr_ptr
    {&PyOffsets::frame_owner,                    {   N,   N,   N,  69,  70,   70}},
    {&PyOffsets::owner_cstack,                   {   N,   N,   N,   N,   3,    3}},  // FRAME_OWNED_BY_CSTACK
    {&PyOffsets::code_size,                      { 128, 128, 128, 184, 192,  200}},  // one read covers the fields below
    {&PyOffsets::code_nunits,                    {   N,   N,   N,  16,  16,   16}},  // ob_size
    {&PyOffsets::code_firstlineno,               {  40,  40,  40,  72,  68,   68}},
    {&PyOffsets::code_filename,                  { 104, 104, 104, 112, 112,  112}},
    {&PyOffsets::code_name,                      { 112, 112, 112, 120, 120,  120}},
    {&PyOffsets::code_qualname,                  {   N,   N,   N, 128, 128,  128}},
    {&PyOffsets::code_linetable,                 { 120, 120, 120, 136, 136,  136}},  // co_lnotab / co_linetable
    {&PyOffsets::code_adaptive,                  {   N,   N,   N, 184, 192,  200}},  // co_code_adaptive
    {&PyOffsets::unicode_ascii_data,             {  48,  48,  48,  48,  40,   40}},  // sizeof(PyASCIIObject)
    {&PyOffsets::unicode_compact_data,           {  72,  72,  72,  72,  56,   56}},  // sizeof(PyCompactUnicodeObject)
};
constexpr InstrKind kInstr[kVersions] = {
    InstrKind::kLastiBytes, InstrKind::kLastiBytes, InstrKind::kLastiCodeUnits,
    InstrKind::kPointer,    InstrKind::kPointer,    InstrKind::kPointer};
constexpr LineTableKind kLines[kVersions] = {
    LineTableKind::kLnotab,    LineTableKind::kLnotab,    LineTableKind::kLinetable,
    LineTableKind::kLocations, LineTableKind::kLocations, LineTableKind::kLocations};
// clang-format on
// Common to all versions (PyOffsets' defaults): ob_type 8, PyBytesObject ob_size 16 / ob_sval 32,
// PyASCIIObject length 16 / state 32.

constexpr PyOffsets column(std::size_t v) {
  PyOffsets o;
  o.major = 3;
  o.minor = static_cast<std::uint32_t>(kFirstMinor + v);
  for (const Row& r : kRows) o.*r.field = r.value[v];
  o.instr_kind = kInstr[v];
  o.line_table_kind = kLines[v];
  return o;
}

}  // namespace

constinit const PyOffsets kPy38 = column(0);
constinit const PyOffsets kPy39 = column(1);
constinit const PyOffsets kPy310 = column(2);
constinit const PyOffsets kPy311 = column(3);
constinit const PyOffsets kPy312 = column(4);
constinit const PyOffsets kPy313 = column(5);

const PyOffsets* offsets_for(int major, int minor) {
  static constexpr const PyOffsets* kAll[kVersions] = {&kPy38, &kPy39, &kPy310, &kPy311, &kPy312, &kPy313};
  if (major != 3 || minor < kFirstMinor || minor >= kFirstMinor + static_cast<int>(kVersions)) return nullptr;
  return kAll[minor - kFirstMinor];
}

}  // namespace loopstall::python
