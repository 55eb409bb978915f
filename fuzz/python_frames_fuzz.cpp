// The CPython read path (thread list, pthread_t mapping, frame walk, code
// objects, strings, line tables, 3.13 debug offsets) over a fake process
// whose memory is the fuzz input (format: python_frames_input.hpp). Must
// never crash, hang or leak.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "loopstall/python/code_resolver.hpp"
#include "loopstall/python/debug_offsets.hpp"
#include "loopstall/python/frame_walker.hpp"
#include "loopstall/python/line_table.hpp"
#include "loopstall/python/thread_ids.hpp"
#include "python_frames_input.hpp"

using namespace loopstall::python;
using namespace loopstall::python::testing;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzHeader h;
  FakeMemory mem;
  if (!decode_fuzz_input(data, size, h, mem)) return 0;
  static const PyOffsets* const kTables[] = {&kPy38, &kPy39, &kPy310, &kPy311, &kPy312, &kPy313};
  PyOffsets o = *kTables[h.version];
  if (h.flags & kFlagDebugOffsets) {
    if (auto d = read_debug_offsets(mem, kFuzzBase, o)) o = *d;
  }
  const PyTypeAddrs types = (h.flags & kFlagTypes) ? PyTypeAddrs{0x7000, 0x7100, 0x7200} : PyTypeAddrs{};

  std::uint32_t pthread_tid = kNoField;
  if (o.tstate_native_thread_id == kNoField) {
    pthread_tid =
        pthread_tid_offset_by_search(mem, kFuzzBase, o, static_cast<pid_t>(h.tid), {h.tid, h.tid + 1}).value_or(720);
  }
  CodeResolver resolver(o, types);
  std::size_t resolved = 0;
  auto walk = [&](std::uint64_t tstate) {
    for (const RawFrame& f : walk_frames(mem, o, tstate, kMaxFrames, types.code)) {
      const loopstall::PyFrame pf = resolver.resolve(mem, f);
      resolved += pf.function.size() + pf.file.size();
    }
  };
  if (const auto ts = find_thread_state(mem, kFuzzBase, o, h.tid, pthread_tid)) walk(*ts);
  std::size_t threads = 0;
  for_each_thread(mem, kFuzzBase, o, [&](const ThreadEntry& e) {
    walk(e.tstate);
    return ++threads < 8;
  });
  // The line decoders straight on the input bytes too: a 512-byte window (at
  // an offset the input picks) holds every state of the decoders, which are
  // linear in the table; wider windows only repeat the same states and took
  // most of the run time (4 KiB: 60 %). Tables of any size still come through
  // the code objects above.
  const std::size_t start = size ? h.tid % size : 0;
  const std::span<const std::uint8_t> bytes(data + start, std::min<std::size_t>(size - start, 512));
  for (std::int64_t off : {std::int64_t{0}, std::int64_t{h.tid % 512}, std::int64_t{1} << 20}) {
    (void)lnotab_line(bytes, 1, off);
    (void)linetable310_line(bytes, 1, off);
    (void)locations_line(bytes, 1, off);
  }
  return resolved > 0 ? 0 : 0;
}
