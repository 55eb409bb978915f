// CPython 3.8 (checked against pyenv 3.8.18).
// Derived with `pahole -C S ~/.pyenv/versions/3.8.18/lib/libpython3.8.so.1.0`
// for S in pyruntimestate _is _ts _frame PyCodeObject PyASCIIObject PyCompactUnicodeObject.
// _PyRuntime.interpreters at 24 (head +8); _is.tstate_head 8; _ts.frame 24, thread_id 176 (pthread_t:
// no kernel tid before 3.11, see thread_ids.cpp); _frame.f_back 24, f_code 32, f_lasti 104 (bytes).
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

constinit const PyOffsets kPy38 = [] {
  PyOffsets o;
  o.major = 3;
  o.minor = 8;
  o.runtime_interpreters_head = 32;
  o.runtime_finalizing = 16;  // finalizing (pahole pyruntimestate)
  o.interp_next = 0;
  o.interp_threads_head = 8;
  o.tstate_next = 8;
  o.tstate_thread_id = 176;
  o.tstate_frame = 24;
  o.frame_previous = 24;
  o.frame_code = 32;
  o.frame_instr = 104;
  o.instr_kind = InstrKind::kLastiBytes;
  o.code_size = 128;
  o.code_firstlineno = 40;
  o.code_filename = 104;
  o.code_name = 112;
  o.code_linetable = 120;  // co_lnotab
  o.line_table_kind = LineTableKind::kLnotab;
  o.unicode_ascii_data = 48;
  o.unicode_compact_data = 72;
  return o;
}();

}  // namespace loopstall::python
