// Which framework runs a Python event loop ("loop" in the contract), from
// evidence that cannot lie about it:
//  - the native code the process runs (its executable mappings): gevent's
//    C modules or libev, uvloop's loop module; greenlet without gevent only
//    hints at eventlet;
//  - for pure-Python frameworks, the Python frames of the loop thread while
//    it waits in epoll_wait (the framework's own poller is then on the stack).
// The patterns live in one table in frameworks.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "loopstall/stall.hpp"

namespace loopstall {

// What a Python process's executable mappings say. add() each mapped file
// that is executable: code the process runs (files merely mapped for reading,
// as loopstall maps interpreters for their symbols, prove nothing).
class ModuleEvidence {
 public:
  void add(std::string_view path);
  // Gevent or Uvloop when native code settles it, else Eventlet on the
  // greenlet hint, else Python (nothing known).
  LoopKind kind() const;
  // Some event-loop module runs: gevent's, uvloop's, greenlet or asyncio's
  // C accelerator.
  bool loop_module() const;

 private:
  std::size_t row_ = SIZE_MAX;  // the framework table's decisive row
  bool greenlet_ = false, asyncio_ = false;
};

// Native code settles these kinds; frames cannot overrule them.
bool decided_by_modules(LoopKind k);

// The framework whose frames are on a loop thread's Python stack (innermost
// first) while it waits in epoll_wait; Python when none is (a Python loop of
// no known framework). nullopt when there are no frames at all (not read).
std::optional<LoopKind> loop_from_frames(const std::vector<PyFrame>& frames);

// Python frames (innermost first) that show the thread is running an event
// loop's iteration now: a loop runner's frame (asyncio, twisted, tornado,
// eventlet, gevent's hub), or, in a gevent process, a greenlet's frames --
// the hub runs it.
bool frames_run_a_loop(const std::vector<PyFrame>& frames, bool gevent);

// The loop kind of a Python process: modules first, then what a loop
// thread's stack showed, then the module hint.
LoopKind python_loop_kind(LoopKind from_modules, std::optional<LoopKind> from_stack);

}  // namespace loopstall
