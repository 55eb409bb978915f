// Walking and resolving synthetic process images for every version, and the
// ways garbage must end a walk: cycles, depth, bad pointers, wrong types.
#include <doctest/doctest.h>

#include "loopstall/python/code_resolver.hpp"
#include "loopstall/python/debug_offsets.hpp"
#include "loopstall/python/frame_walker.hpp"
#include "loopstall/python/line_table.hpp"
#include "loopstall/python/thread_ids.hpp"
#include "synthetic_image.hpp"

using namespace loopstall::python;
using namespace loopstall::python::testing;

namespace {

constexpr pid_t kPid = 4242;

const std::vector<const PyOffsets*> kAll = {&kPy38, &kPy39, &kPy310, &kPy311, &kPy312, &kPy313};

// A table giving line firstlineno + k for byte offsets [2k, 2k + 2), in the version's encoding.
std::vector<std::uint8_t> step_table(LineTableKind kind, int steps) {
  std::vector<std::uint8_t> t;
  for (int k = 0; k < steps; ++k) {
    switch (kind) {
      case LineTableKind::kLnotab:  // (addr delta, line delta): the first pair moves to offset 0
        t.insert(t.end(), {static_cast<std::uint8_t>(k == 0 ? 0 : 2), static_cast<std::uint8_t>(k == 0 ? 0 : 1)});
        break;
      case LineTableKind::kLinetable:  // range [2k, 2k+2) on line first + k
        t.insert(t.end(), {2, static_cast<std::uint8_t>(k == 0 ? 0 : 1)});
        break;
      case LineTableKind::kLocations:  // one code unit, no-column form, line delta +1 (0 for the first)
        t.insert(t.end(), {static_cast<std::uint8_t>(0x80 | (13 << 3)), static_cast<std::uint8_t>(k == 0 ? 0 : 2)});
        break;
    }
  }
  return t;
}

SynthFrame frame(const PyOffsets& o, const std::string& name, const std::string& qual, int first, int line) {
  SynthFrame f;
  f.name = name;
  f.qualname = qual;
  f.file = "/app/" + name + ".py";
  f.firstlineno = first;
  f.table = step_table(o.line_table_kind, 16);
  f.offset = 2 * (line - first);
  return f;
}

std::vector<SynthThread> two_threads(const PyOffsets& o) {
  SynthFrame shim;
  shim.shim = true;
  const bool shims = o.owner_cstack != kNoField;
  SynthThread main_thread{kPid,
                          {frame(o, "inner_sleep", "inner_sleep", 10, 12), frame(o, "method", "Klass.method", 20, 21)}};
  if (shims) main_thread.frames.insert(main_thread.frames.begin() + 1, shim);
  main_thread.frames.push_back(frame(o, "<module>", "<module>", 1, 5));
  if (shims) main_thread.frames.push_back(shim);
  SynthThread worker{kPid + 1, {frame(o, "work", "Worker.work", 30, 30)}};
  return {main_thread, worker};
}

}  // namespace

TEST_CASE("synthetic images: every version walks and resolves") {
  for (const PyOffsets* o : kAll) {
    CAPTURE(o->minor);
    SynthImage img = build_image(*o, two_threads(*o));
    const std::uint32_t pt = o->tstate_native_thread_id == kNoField ? kPthreadTidOffset : kNoField;

    REQUIRE(find_thread_state(img.mem, img.runtime, *o, kPid, pt) == img.tstates[0]);
    REQUIRE(find_thread_state(img.mem, img.runtime, *o, kPid + 1, pt) == img.tstates[1]);
    CHECK_FALSE(find_thread_state(img.mem, img.runtime, *o, kPid + 2, pt));
    if (pt != kNoField) CHECK_FALSE(find_thread_state(img.mem, img.runtime, *o, kPid));  // no way to map pthread_t

    for (const std::uint64_t code_type : {std::uint64_t{0}, kCodeType}) {
      const auto raw = walk_frames(img.mem, *o, img.tstates[0], kMaxFrames, code_type);
      REQUIRE(raw.size() == 3);  // shims skipped
      CodeResolver resolver(*o, {code_type, code_type ? kStrType : 0, code_type ? kBytesType : 0});
      const bool qual = o->code_qualname != kNoField;
      std::vector<loopstall::PyFrame> frames;
      for (const auto& r : raw) frames.push_back(resolver.resolve(img.mem, r));
      CHECK(frames[0].function == "inner_sleep");
      CHECK(frames[0].file == "/app/inner_sleep.py");
      CHECK(frames[0].line == 12);
      CHECK(frames[1].function == (qual ? "Klass.method" : "method"));
      CHECK(frames[1].line == 21);
      CHECK(frames[2].function == "<module>");
      CHECK(frames[2].line == 5);
    }
    const auto worker = walk_frames(img.mem, *o, img.tstates[1]);
    REQUIRE(worker.size() == 1);
    CodeResolver resolver(*o);
    CHECK(resolver.resolve(img.mem, worker[0]).line == 30);
  }
}

TEST_CASE("pthread_t -> tid offset, both ways") {
  for (const PyOffsets* o : {&kPy38, &kPy39, &kPy310}) {
    SynthImage img = build_image(*o, two_threads(*o));
    CHECK(pthread_tid_offset_by_search(img.mem, img.runtime, *o, kPid, {kPid, kPid + 1}) == kPthreadTidOffset);
    // A tid that is not live, or two threads claiming the same tid, rule the offset out.
    CHECK_FALSE(pthread_tid_offset_by_search(img.mem, img.runtime, *o, kPid, {kPid}));
    CHECK_FALSE(pthread_tid_offset_by_search(img.mem, img.runtime, *o, kPid + 7, {kPid, kPid + 1}));
  }
  FakeMemory m;
  m.map(0x5000, 64);
  m.put<std::uint32_t>(0x5000, 32);
  m.put<std::uint32_t>(0x5004, 1);
  m.put<std::uint32_t>(0x5008, 720);
  CHECK(pthread_tid_offset_from_descriptor(m, 0x5000) == 720u);
  m.put<std::uint32_t>(0x5000, 64);  // not a 32-bit field
  CHECK_FALSE(pthread_tid_offset_from_descriptor(m, 0x5000));
  CHECK_FALSE(pthread_tid_offset_from_descriptor(m, 0x9000));
}

TEST_CASE("garbage ends walks") {
  const PyOffsets& o = kPy311;
  std::vector<SynthFrame> chain;
  for (int i = 0; i < 300; ++i) chain.push_back(frame(o, "f" + std::to_string(i), "f", 1, 1));
  SynthImage img = build_image(o, {{kPid, chain}});
  const std::uint64_t ts = img.tstates[0];
  const auto& frames = img.frames[0];

  SUBCASE("depth") {
    CHECK(walk_frames(img.mem, o, ts).size() == kMaxFrames);
    CHECK(walk_frames(img.mem, o, ts, 10).size() == 10);
  }
  SUBCASE("cycle") {
    img.mem.put<std::uint64_t>(frames[4] + o.frame_previous, frames[1]);
    CHECK(walk_frames(img.mem, o, ts).size() == 5);
    img.mem.put<std::uint64_t>(frames[0] + o.frame_previous, frames[0]);
    CHECK(walk_frames(img.mem, o, ts).size() == 1);
  }
  SUBCASE("bad pointers") {
    img.mem.put<std::uint64_t>(frames[2] + o.frame_previous, 0xdead0001);  // misaligned
    CHECK(walk_frames(img.mem, o, ts).size() == 3);
    img.mem.put<std::uint64_t>(frames[1] + o.frame_previous, 0x7f0000000000);  // unmapped
    CHECK(walk_frames(img.mem, o, ts).size() == 2);
    img.mem.put<std::uint64_t>(frames[0] + o.frame_code, 0xffff800000000000);  // kernel half
    CHECK(walk_frames(img.mem, o, ts).empty());
  }
  SUBCASE("not a code object") {
    img.mem.put<std::uint64_t>(img.codes[0][3] + o.object_type, kStrType);
    CHECK(walk_frames(img.mem, o, ts, kMaxFrames, kCodeType).size() == 3);
    CodeResolver r(o, {kCodeType, kStrType, kBytesType});
    const auto f = r.resolve(img.mem, {img.codes[0][3], 0});
    CHECK(f.function == kUnknown);
    CHECK_FALSE(f.line);
  }
  SUBCASE("instruction outside the code") {
    CodeResolver r(o);
    CHECK_FALSE(r.resolve(img.mem, {img.codes[0][0], img.codes[0][0] + o.code_adaptive + 2 * kSynthUnits}).line);
    CHECK_FALSE(r.resolve(img.mem, {img.codes[0][0], 8}).line);
    CHECK(r.resolve(img.mem, {img.codes[0][0], img.codes[0][0] + o.code_adaptive - 2}).line == 1);  // not started
  }
  SUBCASE("thread list cycles and garbage") {
    img.mem.put<std::uint64_t>(ts + o.tstate_next, ts);
    CHECK(find_thread_state(img.mem, img.runtime, o, kPid) == ts);
    CHECK_FALSE(find_thread_state(img.mem, img.runtime, o, 1));
    img.mem.put<std::uint64_t>(img.runtime + o.runtime_interpreters_head, 0x13);
    CHECK_FALSE(find_thread_state(img.mem, img.runtime, o, kPid));
    CHECK(walk_frames(img.mem, o, 0).empty());
  }
}

TEST_CASE("resolver cache: hits re-validate the code object") {
  const PyOffsets& o = kPy312;
  SynthImage img = build_image(o, two_threads(o));
  CodeResolver r(o);
  const auto raw = walk_frames(img.mem, o, img.tstates[1]);
  REQUIRE(raw.size() == 1);
  CHECK(r.resolve(img.mem, raw[0]).function == "Worker.work");
  const std::size_t cold = img.mem.reads();
  CHECK(r.resolve(img.mem, raw[0]).function == "Worker.work");
  CHECK(img.mem.reads() - cold == 1);  // one header read, no strings, no table
  CHECK(r.cache_size() == 1);
  // The code object at that address changed (freed and reused): decoded again.
  const std::uint64_t other_name = img.mem.read_as<std::uint64_t>(img.codes[0][0] + o.code_qualname).value();
  img.mem.put<std::uint64_t>(raw[0].code + o.code_qualname, other_name);
  CHECK(r.resolve(img.mem, raw[0]).function == "inner_sleep");
}

TEST_CASE("3.13 _Py_DebugOffsets") {
  const DebugOffsets313 d = make_debug_offsets(kPy313);
  const auto applied = apply_debug_offsets(d, kPy313);
  REQUIRE(applied);
  CHECK(*applied == kPy313);

  DebugOffsets313 bad = d;
  bad.cookie[0] = 'y';
  CHECK_FALSE(apply_debug_offsets(bad, kPy313));
  bad = d;
  bad.version = 0x030e00f0;  // 3.14
  CHECK_FALSE(apply_debug_offsets(bad, kPy313));
  bad = d;
  bad.free_threaded = 1;
  CHECK_FALSE(apply_debug_offsets(bad, kPy313));
  bad = d;
  bad.interpreter_frame.previous = 1000;  // past the frame
  CHECK_FALSE(apply_debug_offsets(bad, kPy313));
  bad = d;
  // A struct size the target makes huge must not let an offset wrap the
  // 32-bit code_size (the code object's type at 2^32 - 4 read the daemon's
  // stack: fuzz_python_frames, regressions/python_frames/debug-offsets-wrap).
  bad.pyobject.size = ~0ull;
  bad.pyobject.ob_type = 0xfffffffc;
  CHECK_FALSE(apply_debug_offsets(bad, kPy313));
  bad = d;
  bad.thread_state.current_frame = 80;  // a moved field is followed
  const auto moved = apply_debug_offsets(bad, kPy313);
  REQUIRE(moved);
  CHECK(moved->tstate_frame == 80);

  // Only 3.13 tables read them.
  SynthImage img = build_image(kPy313, {});
  CHECK(read_debug_offsets(img.mem, img.runtime, kPy313) == kPy313);
  CHECK_FALSE(read_debug_offsets(img.mem, img.runtime, kPy312));
}

TEST_CASE("offsets_for") {
  for (int minor = 8; minor <= 13; ++minor) {
    const PyOffsets* o = offsets_for(3, minor);
    REQUIRE(o);
    CHECK(o->minor == static_cast<std::uint32_t>(minor));
    CHECK(o->code_size <= 256);
  }
  CHECK_FALSE(offsets_for(3, 7));
  CHECK_FALSE(offsets_for(3, 14));
  CHECK_FALSE(offsets_for(2, 7));
}

TEST_CASE("resolve_stack: a code object shared by many frames is read once, and reuse is still noticed") {
  const PyOffsets& o = kPy312;
  SynthImage img = build_image(o, two_threads(o));
  CodeResolver r(o);
  const auto raw = walk_frames(img.mem, o, img.tstates[1]);
  REQUIRE(raw.size() == 1);
  // Deep recursion: 200 frames of one function.
  const std::vector<RawFrame> deep(200, raw[0]);
  REQUIRE(r.resolve_stack(img.mem, deep).size() == 200);
  const std::size_t cold = img.mem.reads();
  const auto warm = r.resolve_stack(img.mem, deep);
  CHECK(img.mem.reads() - cold == 1);  // one header read for the whole stack
  REQUIRE(warm.size() == 200);
  CHECK(warm.back().function == "Worker.work");
  // The next stack sees the address reused by another code object: not the stale name.
  const std::uint64_t other_name = img.mem.read_as<std::uint64_t>(img.codes[0][0] + o.code_qualname).value();
  img.mem.put<std::uint64_t>(raw[0].code + o.code_qualname, other_name);
  const auto after = r.resolve_stack(img.mem, deep);
  REQUIRE(after.size() == 200);
  CHECK(after.front().function == "inner_sleep");
  CHECK(after.back().function == "inner_sleep");
  // An unreadable frame ends the stack there.
  std::vector<RawFrame> broken(3, raw[0]);
  broken[1].code = 0x10;
  CHECK(r.resolve_stack(img.mem, broken).size() == 1);
}

namespace {

// A 3.11 thread whose frames sit in data stack chunks like CPython's: each
// caller just below its callee. Returns the tstate; frames[i] is depth i.
std::uint64_t data_stack(FakeMemory& m, const PyOffsets& o, const std::vector<std::uint64_t>& frames) {
  constexpr std::uint64_t kTstate = 0x7000'0000;
  m.map(kTstate, 0x200);
  const std::uint64_t cframe = kTstate + 0x100;
  m.put<std::uint64_t>(kTstate + o.tstate_cframe, cframe);
  m.put<std::uint64_t>(cframe + o.cframe_current_frame, frames.front());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    m.put<std::uint64_t>(frames[i] + o.frame_code, 0x5000'0000 + i * 0x100);  // a distinct code object each
    m.put<std::int32_t>(frames[i] + o.frame_instr, static_cast<std::int32_t>(i));
    m.put<std::uint64_t>(frames[i] + o.frame_previous, i + 1 < frames.size() ? frames[i + 1] : 0);
  }
  return kTstate;
}

void check_chain(const std::vector<RawFrame>& raw, std::size_t depth) {
  REQUIRE(raw.size() == depth);
  for (std::size_t i = 0; i < depth; ++i) {
    CHECK(raw[i].code == 0x5000'0000 + i * 0x100);
    CHECK(raw[i].instr == i);
  }
}

}  // namespace

TEST_CASE("a 3.11 walk reads the data stack in a few reads, not one per frame") {
  const PyOffsets& o = kPy311;
  constexpr std::uint64_t kChunk = 0x6000'0000, kFrameSize = 0x70;
  SUBCASE("one chunk: the window below the innermost frame") {
    FakeMemory m;
    m.map(kChunk, 0x8000);
    std::vector<std::uint64_t> frames;
    for (std::size_t i = 0; i < 200; ++i) frames.push_back(kChunk + 0x7000 - i * kFrameSize);
    const std::uint64_t ts = data_stack(m, o, frames);
    const std::size_t before = m.reads();
    check_chain(walk_frames(m, o, ts), kMaxFrames);
    // The window covers ~146 frames of 0x70 bytes: the 128 read come from
    // one or two loads (plus the thread state's reads).
    CHECK(m.reads() - before <= 6);
  }
  SUBCASE("the innermost frame at a chunk's start: the pages below are not mapped") {
    FakeMemory m;
    m.map(kChunk, 0x1000);
    m.map(kChunk - 0x10000, 0x2000);  // an older chunk far below
    const std::vector<std::uint64_t> frames = {kChunk + 0x10, kChunk - 0x10000 + 0x1f00, kChunk - 0x10000 + 0x100};
    const std::uint64_t ts = data_stack(m, o, frames);
    check_chain(walk_frames(m, o, ts), frames.size());
  }
  SUBCASE("frames outside any window (heap frames, generators) are read alone") {
    FakeMemory m;
    std::vector<std::uint64_t> frames;
    for (std::size_t i = 0; i < 20; ++i) {
      frames.push_back(kChunk + i * 0x10000);  // callers above their callees, each its own mapping
      m.map(frames.back(), kFrameSize);
    }
    const std::uint64_t ts = data_stack(m, o, frames);
    check_chain(walk_frames(m, o, ts), frames.size());
  }
  SUBCASE("a window never serves bytes beyond the mapping it was read from") {
    FakeMemory m;
    m.map(kChunk, 0x5000);
    std::vector<std::uint64_t> frames;
    for (std::size_t i = 0; i < 10; ++i) frames.push_back(kChunk + 0x4f00 - i * kFrameSize);
    frames.push_back(kChunk + 0x5000 - 0x20);  // its block runs off the mapping's end
    const std::uint64_t ts = data_stack(m, o, std::vector<std::uint64_t>(frames.begin(), frames.end() - 1));
    m.put<std::uint64_t>(frames[9] + o.frame_previous, frames[10]);
    check_chain(walk_frames(m, o, ts), 10);  // the unreadable frame ends the walk
  }
}
