// Builds a fake CPython process image (runtime, interpreter, thread states,
// frames, code objects, str and bytes) laid out with a version's offsets, for
// tests and fuzz seeds that need no live interpreter.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "fake_memory.hpp"
#include "loopstall/python/debug_offsets.hpp"
#include "loopstall/python/offsets.hpp"

namespace loopstall::python::testing {

inline constexpr std::uint64_t kBase = 0x100000;
inline constexpr std::uint64_t kCodeType = 0x7000;
inline constexpr std::uint64_t kStrType = 0x7100;
inline constexpr std::uint64_t kBytesType = 0x7200;
inline constexpr std::uint32_t kPthreadTidOffset = 720;  // glibc 2.36
inline constexpr std::int64_t kSynthUnits = 256;         // bytecode size of every code object, in code units

struct SynthFrame {
  std::string name;
  std::string qualname;  // 3.11+
  std::string file;
  int firstlineno = 1;
  std::vector<std::uint8_t> table;
  std::int64_t offset = 0;  // bytes into the bytecode; -1: not started
  bool shim = false;        // a C-stack entry frame (3.12+)
};

struct SynthThread {
  std::uint32_t tid = 0;
  std::vector<SynthFrame> frames;  // innermost first
};

struct SynthImage {
  FakeMemory mem;
  std::uint64_t runtime = kBase;
  std::vector<std::uint64_t> tstates;
  std::vector<std::vector<std::uint64_t>> frames;  // per thread, innermost first (shims included)
  std::vector<std::vector<std::uint64_t>> codes;
};

// _Py_DebugOffsets as a 3.13 runtime would publish them for table `o`.
inline DebugOffsets313 make_debug_offsets(const PyOffsets& o) {
  DebugOffsets313 d{};
  std::memcpy(d.cookie, "xdebugpy", 8);
  d.version = (std::uint64_t{o.major} << 24) | (std::uint64_t{o.minor} << 16) | 0xf0;
  d.runtime_state = {0x1000, o.runtime_finalizing, o.runtime_interpreters_head};
  d.interpreter_state.size = 0x2000;
  d.interpreter_state.next = o.interp_next;
  d.interpreter_state.threads_head = o.interp_threads_head;
  d.thread_state.size = 0x200;
  d.thread_state.next = o.tstate_next;
  d.thread_state.current_frame = o.tstate_frame;
  d.thread_state.thread_id = o.tstate_thread_id;
  d.thread_state.native_thread_id = o.tstate_native_thread_id;
  d.interpreter_frame = {80, o.frame_previous, o.frame_code, o.frame_instr, 72, o.frame_owner};
  d.code_object.size = o.code_size + 8;
  d.code_object.filename = o.code_filename;
  d.code_object.name = o.code_name;
  d.code_object.qualname = o.code_qualname;
  d.code_object.linetable = o.code_linetable;
  d.code_object.firstlineno = o.code_firstlineno;
  d.code_object.co_code_adaptive = o.code_adaptive;
  d.pyobject = {16, o.object_type};
  d.bytes_object = {40, o.bytes_size, o.bytes_data};
  d.unicode_object = {o.unicode_ascii_data, o.unicode_state, o.unicode_length, o.unicode_ascii_data};
  return d;
}

inline SynthImage build_image(const PyOffsets& o, const std::vector<SynthThread>& threads) {
  SynthImage img;
  FakeMemory& m = img.mem;
  std::uint64_t next = kBase + 0x4000;  // bump allocator for everything after the fixed structs
  auto alloc = [&](std::size_t size) {
    const std::uint64_t at = next;
    next += (size + 0xff) & ~std::uint64_t{0xff};
    m.map(at, size);
    return at;
  };
  auto str = [&](const std::string& s) {
    const std::uint64_t at = alloc(o.unicode_ascii_data + s.size() + 1);
    m.put<std::uint64_t>(at + o.object_type, kStrType);
    m.put<std::int64_t>(at + o.unicode_length, static_cast<std::int64_t>(s.size()));
    m.put<std::uint32_t>(at + o.unicode_state, (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7));
    m.write(at + o.unicode_ascii_data, s.data(), s.size());
    return at;
  };
  auto bytes = [&](const std::vector<std::uint8_t>& b) {
    const std::uint64_t at = alloc(o.bytes_data + b.size() + 1);
    m.put<std::uint64_t>(at + o.object_type, kBytesType);
    m.put<std::int64_t>(at + o.bytes_size, static_cast<std::int64_t>(b.size()));
    if (!b.empty()) m.write(at + o.bytes_data, b.data(), b.size());
    return at;
  };
  const std::int64_t kUnits = kSynthUnits;
  auto struct_size = [](std::initializer_list<std::uint32_t> offsets) {
    std::uint64_t end = 0;
    for (const std::uint32_t off : offsets) end = off == kNoField ? end : std::max<std::uint64_t>(end, off + 8);
    return static_cast<std::size_t>((end + 0xff) & ~std::uint64_t{0xff});
  };

  m.map(img.runtime, struct_size({o.runtime_interpreters_head, static_cast<std::uint32_t>(sizeof(DebugOffsets313))}));
  if (o.runtime_debug_offsets != kNoField) {
    const DebugOffsets313 d = make_debug_offsets(o);
    m.write(img.runtime + o.runtime_debug_offsets, &d, sizeof d);
  }
  const std::uint64_t interp = kBase + 0x1000;
  m.map(interp, struct_size({o.interp_next, o.interp_threads_head}));
  m.put<std::uint64_t>(img.runtime + o.runtime_interpreters_head, interp);

  std::uint64_t prev_tstate = 0;
  for (std::size_t t = threads.size(); t-- > 0;) {  // the list is newest first: build it backwards
    const SynthThread& th = threads[t];
    const std::uint64_t ts = alloc(0x200);
    m.put<std::uint64_t>(ts + o.tstate_next, prev_tstate);
    prev_tstate = ts;
    const std::uint64_t pthread = alloc(0x940);
    m.put<std::uint64_t>(pthread + 16, pthread);  // header.self
    m.put<std::int32_t>(pthread + kPthreadTidOffset, static_cast<std::int32_t>(th.tid));
    m.put<std::uint64_t>(ts + o.tstate_thread_id, pthread);
    if (o.tstate_native_thread_id != kNoField) m.put<std::uint64_t>(ts + o.tstate_native_thread_id, th.tid);

    std::vector<std::uint64_t> frames, codes;
    for (const SynthFrame& f : th.frames) {
      const std::uint64_t frame = alloc(0x100);
      std::uint64_t code = 0;
      if (!f.shim) {
        code = alloc(o.code_size + 2 * kUnits);
        m.put<std::uint64_t>(code + o.object_type, kCodeType);
        if (o.code_nunits != kNoField) m.put<std::int64_t>(code + o.code_nunits, kUnits);
        m.put<std::int32_t>(code + o.code_firstlineno, f.firstlineno);
        m.put<std::uint64_t>(code + o.code_filename, str(f.file));
        m.put<std::uint64_t>(code + o.code_name, str(f.name));
        if (o.code_qualname != kNoField) m.put<std::uint64_t>(code + o.code_qualname, str(f.qualname));
        m.put<std::uint64_t>(code + o.code_linetable, bytes(f.table));
      }
      m.put<std::uint64_t>(frame + o.frame_code, code);
      switch (o.instr_kind) {
        case InstrKind::kLastiBytes:
          m.put<std::int32_t>(frame + o.frame_instr, static_cast<std::int32_t>(f.offset));
          break;
        case InstrKind::kLastiCodeUnits:
          m.put<std::int32_t>(frame + o.frame_instr, static_cast<std::int32_t>(f.offset < 0 ? -1 : f.offset / 2));
          break;
        case InstrKind::kPointer:
          m.put<std::uint64_t>(frame + o.frame_instr, code + o.code_adaptive + (f.offset < 0 ? -2 : f.offset));
          break;
      }
      if (o.frame_owner != kNoField) {
        m.put<std::uint8_t>(frame + o.frame_owner, static_cast<std::uint8_t>(f.shim ? o.owner_cstack : 0));
      }
      if (!frames.empty()) m.put<std::uint64_t>(frames.back() + o.frame_previous, frame);
      frames.push_back(frame);
      codes.push_back(code);
    }
    const std::uint64_t first = frames.empty() ? 0 : frames.front();
    if (o.tstate_cframe != kNoField) {
      const std::uint64_t cframe = alloc(0x40);
      m.put<std::uint64_t>(ts + o.tstate_cframe, cframe);
      m.put<std::uint64_t>(cframe + o.cframe_current_frame, first);
    } else {
      m.put<std::uint64_t>(ts + o.tstate_frame, first);
    }
    img.tstates.insert(img.tstates.begin(), ts);
    img.frames.insert(img.frames.begin(), frames);
    img.codes.insert(img.codes.begin(), codes);
  }
  m.put<std::uint64_t>(interp + o.interp_threads_head, prev_tstate);
  return img;
}

}  // namespace loopstall::python::testing
