// Walking CPython's thread and frame lists in another process's memory. All
// reads are checked, every list is bounded and cycle-checked: garbage (a racing
// target, a freed frame, a hostile process) ends the walk, it never faults or
// loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "loopstall/process_memory.hpp"
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

inline constexpr std::size_t kMaxFrames = 128;
inline constexpr std::size_t kMaxInterpreters = 64;
inline constexpr std::size_t kMaxThreads = 4096;  // in all interpreters together

// One Python frame as found in memory: the code object and the raw instruction
// field (f_lasti, sign-extended, or the instruction pointer; see InstrKind).
struct RawFrame {
  std::uint64_t code = 0;
  std::uint64_t instr = 0;
  bool operator==(const RawFrame&) const = default;
};

struct ThreadEntry {
  std::uint64_t tstate = 0;
  std::uint64_t thread_id = 0;         // pthread_t
  std::uint64_t native_thread_id = 0;  // kernel tid (3.11+), else 0
};

// Visits every thread state of every interpreter; the visitor returns false to stop.
void for_each_thread(const Memory& mem, std::uint64_t runtime, const PyOffsets& o,
                     const std::function<bool(const ThreadEntry&)>& visit);

// The thread state whose kernel tid is `tid` (whether or not it holds the GIL).
// Before 3.11 thread states only hold the pthread_t: pthread_tid_offset is where
// glibc's struct pthread keeps the tid (see thread_ids.hpp); kNoField = unknown.
std::optional<std::uint64_t> find_thread_state(const Memory& mem, std::uint64_t runtime, const PyOffsets& o,
                                               std::uint32_t tid, std::uint32_t pthread_tid_offset = kNoField);

// The thread's frames, innermost first, at most max_depth. C-stack shim frames
// (3.12+) are skipped. If code_type is known, a frame whose code is not a code
// object ends the walk.
std::vector<RawFrame> walk_frames(const Memory& mem, const PyOffsets& o, std::uint64_t tstate,
                                  std::size_t max_depth = kMaxFrames, std::uint64_t code_type = 0);

}  // namespace loopstall::python
