// Where the stacks of stall evidence come from: the Detector asks once per
// sample or block and hands the result to every correlator that watches
// the process. The live implementation reads the target's memory (CPython
// frames by native thread id, native unwinding with libdw).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "loopstall/evidence.hpp"
#include "loopstall/loopstall.h"

namespace loopstall {

class StackSource {
 public:
  virtual ~StackSource() = default;
  // A loop thread caught on CPU by the BPF sampler: registers, stack and
  // (once python_thread() was registered) Python frames copied by BPF at
  // the sample; otherwise the Python frames are read now.
  virtual std::optional<StackSample> on_cpu(const ls_sample_event& e) = 0;
  // A loop thread that is blocked right now (read from /proc without
  // stopping it); nullopt if it runs again or is gone.
  virtual std::optional<StackSample> blocked(std::uint32_t pid, std::uint32_t tid) = 0;
  // How BPF can walk the Python frames of a CPython thread (nullopt: not
  // CPython, or its thread state is not found yet).
  virtual std::optional<ls_py_thread> python_thread(std::uint32_t pid, std::uint32_t tid) = 0;
  // The Python frames thread tid runs now, innermost first (empty: not
  // CPython, or not readable).
  virtual std::vector<PyFrame> python_frames(std::uint32_t pid, std::uint32_t tid) = 0;
  // The Python frames (innermost first) of a thread asleep in a syscall, and
  // that syscall's number: only if the thread slept in it through the read
  // (nullopt if it ran meanwhile, is gone, or has no CPython thread state).
  struct SleepingFrames {
    long syscall = -1;
    std::vector<PyFrame> frames;
  };
  virtual std::optional<SleepingFrames> sleeping_python_frames(std::uint32_t /*pid*/, std::uint32_t /*tid*/) {
    return std::nullopt;
  }
  // The process is a CPython interpreter that began shutting down.
  virtual bool interpreter_finalizing(std::uint32_t pid) = 0;
  // The process is gone: drop what is cached about it.
  virtual void forget(std::uint32_t pid) = 0;
};

std::unique_ptr<StackSource> make_live_stack_source();

}  // namespace loopstall
