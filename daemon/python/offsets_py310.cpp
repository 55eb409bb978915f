// CPython 3.10 (checked against pyenv 3.10.13).
// Derived with `pahole -C S ~/.pyenv/versions/3.10.13/lib/libpython3.10.so.1.0`
// for S in pyruntimestate _is _ts _frame PyCodeObject PyASCIIObject PyCompactUnicodeObject.
// Same as 3.9 except _frame.f_lasti moved to 96 and now counts 2-byte code units, and co_lnotab became
// co_linetable (same slot, new encoding). _ts.cframe exists but tstate->frame is still the frame chain.
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

constinit const PyOffsets kPy310 = [] {
  PyOffsets o;
  o.major = 3;
  o.minor = 10;
  o.runtime_interpreters_head = 32;
  o.runtime_finalizing = 16;  // _finalizing (pahole pyruntimestate)
  o.interp_next = 0;
  o.interp_threads_head = 8;
  o.tstate_next = 8;
  o.tstate_thread_id = 176;
  o.tstate_frame = 24;
  o.frame_previous = 24;
  o.frame_code = 32;
  o.frame_instr = 96;
  o.instr_kind = InstrKind::kLastiCodeUnits;
  o.code_size = 128;
  o.code_firstlineno = 40;
  o.code_filename = 104;
  o.code_name = 112;
  o.code_linetable = 120;  // co_linetable
  o.line_table_kind = LineTableKind::kLinetable;
  o.unicode_ascii_data = 48;
  o.unicode_compact_data = 72;
  return o;
}();

}  // namespace loopstall::python
