// CPython 3.13 (checked against pyenv 3.13.0).
// Derived with `pahole -C S ~/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0`
// for S in pyruntimestate _is pythreads _ts _PyInterpreterFrame PyCodeObject PyASCIIObject,
// and `pahole -E -C _Py_DebugOffsets`: 3.13 publishes most of these at the start of _PyRuntime (cookie
// "xdebugpy"); debug_offsets.cpp prefers those at run time, this table is the fallback and the check.
// _PyRuntime.interpreters at 624 (head +8); _is.threads at 7336 (head +8); _ts.current_frame 72 (no
// cframe), thread_id 152, native_thread_id 160; _PyInterpreterFrame f_executable 0, previous 8,
// instr_ptr 56, owner 70 (3 = C stack shim); PyCodeObject co_firstlineno 68, co_filename 112, co_name 120,
// co_qualname 128, co_linetable 136, co_code_adaptive 200.
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

constinit const PyOffsets kPy313 = [] {
  PyOffsets o;
  o.major = 3;
  o.minor = 13;
  o.runtime_interpreters_head = 632;
  o.runtime_finalizing = 608;  // _finalizing (pahole pyruntimestate)
  o.runtime_debug_offsets = 0;
  o.interp_next = 7264;
  o.interp_threads_head = 7344;
  o.tstate_next = 8;
  o.tstate_thread_id = 152;
  o.tstate_native_thread_id = 160;
  o.tstate_frame = 72;  // current_frame: an _PyInterpreterFrame*
  o.frame_previous = 8;
  o.frame_code = 0;
  o.frame_instr = 56;
  o.instr_kind = InstrKind::kPointer;
  o.frame_owner = 70;
  o.owner_cstack = 3;
  o.code_size = 200;
  o.code_nunits = 16;
  o.code_firstlineno = 68;
  o.code_filename = 112;
  o.code_name = 120;
  o.code_qualname = 128;
  o.code_linetable = 136;
  o.line_table_kind = LineTableKind::kLocations;
  o.code_adaptive = 200;
  o.unicode_ascii_data = 40;
  o.unicode_compact_data = 56;
  return o;
}();

}  // namespace loopstall::python
