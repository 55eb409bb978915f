// CPython 3.12 (checked against pyenv 3.12.1).
// Derived with `pahole -C S ~/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0`
// for S in pyruntimestate _is pythreads _ts _PyCFrame _PyInterpreterFrame PyCodeObject PyASCIIObject.
// _PyRuntime.interpreters at 32 (head +8); _is.threads at 64 (head +8); _ts.cframe 56, thread_id 136,
// native_thread_id 144; _PyCFrame.current_frame 0; _PyInterpreterFrame f_code 0, previous 8,
// prev_instr 56, owner 70 (3 = FRAME_OWNED_BY_CSTACK: the entry shim, skipped); PyCodeObject
// co_firstlineno 68, co_filename 112, co_name 120, co_qualname 128, co_linetable 136,
// co_code_adaptive 192. PyASCIIObject lost wstr: 40 / compact 56.
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

constinit const PyOffsets kPy312 = [] {
  PyOffsets o;
  o.major = 3;
  o.minor = 12;
  o.runtime_interpreters_head = 40;
  o.runtime_finalizing = 24;  // _finalizing (pahole pyruntimestate)
  o.interp_next = 0;
  o.interp_threads_head = 72;
  o.tstate_next = 8;
  o.tstate_thread_id = 136;
  o.tstate_native_thread_id = 144;
  o.tstate_cframe = 56;
  o.cframe_current_frame = 0;
  o.frame_previous = 8;
  o.frame_code = 0;
  o.frame_instr = 56;
  o.instr_kind = InstrKind::kPointer;
  o.frame_owner = 70;
  o.owner_cstack = 3;
  o.code_size = 192;
  o.code_nunits = 16;
  o.code_firstlineno = 68;
  o.code_filename = 112;
  o.code_name = 120;
  o.code_qualname = 128;
  o.code_linetable = 136;
  o.line_table_kind = LineTableKind::kLocations;
  o.code_adaptive = 192;
  o.unicode_ascii_data = 40;
  o.unicode_compact_data = 56;
  return o;
}();

}  // namespace loopstall::python
