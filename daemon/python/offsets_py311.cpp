// CPython 3.11 (checked against pyenv 3.11.7 and Debian 3.11.2).
// Derived with `pahole -C S ~/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0`
// for S in pyruntimestate _is pythreads _ts _PyCFrame _PyInterpreterFrame PyCodeObject PyASCIIObject.
// _PyRuntime.interpreters at 32 (head +8); _is.threads at 8 (head +8); _ts.cframe 56, thread_id 152,
// native_thread_id 160; _PyCFrame.current_frame 8; _PyInterpreterFrame f_code 32, previous 48,
// prev_instr 56, owner 69; PyCodeObject (PyVarObject, ob_size = code units) co_firstlineno 72,
// co_filename 112, co_name 120, co_qualname 128, co_linetable 136,
// co_code_adaptive 184. 3.11 has no C-stack shim frames (is_entry marks C entry instead).
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

constinit const PyOffsets kPy311 = [] {
  PyOffsets o;
  o.major = 3;
  o.minor = 11;
  o.runtime_interpreters_head = 40;
  o.runtime_finalizing = 24;  // _finalizing (pahole pyruntimestate)
  o.interp_next = 0;
  o.interp_threads_head = 16;
  o.tstate_next = 8;
  o.tstate_thread_id = 152;
  o.tstate_native_thread_id = 160;
  o.tstate_cframe = 56;
  o.cframe_current_frame = 8;
  o.frame_previous = 48;
  o.frame_code = 32;
  o.frame_instr = 56;
  o.instr_kind = InstrKind::kPointer;
  o.frame_owner = 69;
  o.code_size = 184;
  o.code_nunits = 16;
  o.code_firstlineno = 72;
  o.code_filename = 112;
  o.code_name = 120;
  o.code_qualname = 128;
  o.code_linetable = 136;
  o.line_table_kind = LineTableKind::kLocations;
  o.code_adaptive = 184;
  o.unicode_ascii_data = 48;
  o.unicode_compact_data = 72;
  return o;
}();

}  // namespace loopstall::python
