#include "loopstall/frameworks.hpp"

#include <array>

namespace loopstall {
namespace {

// Path fragments that identify a framework. `modules` match executable
// mappings (native code the process runs), `frames` the file names of the
// loop thread's Python frames while it waits in epoll_wait. Rows are in
// precedence order: twisted's asyncio reactor shows both twisted and asyncio
// frames, and is twisted.
struct Framework {
  LoopKind kind;
  std::array<std::string_view, 2> modules;
  std::array<std::string_view, 2> frames;
};

constexpr std::array kFrameworks = {
    // gevent's compiled hub (libev or libuv backend) and greenlets live in
    // its package directory; Debian links the system libev.
    Framework{LoopKind::Gevent, {"/gevent/", "/libev.so"}, {"/gevent/", ""}},
    // The whole loop is native (uvloop/loop.cpython-*.so over libuv).
    Framework{LoopKind::Uvloop, {"/uvloop/", ""}, {"/uvloop/", ""}},
    // Pure Python: its hub (hub.py, epolls.py) polls.
    Framework{LoopKind::Eventlet, {"", ""}, {"/eventlet/hubs/", ""}},
    // The reactor's mainLoop/doPoll (base.py, epollreactor.py).
    Framework{LoopKind::Twisted, {"", ""}, {"/twisted/internet/", ""}},
    // BaseEventLoop.run_forever/_run_once; aiohttp and tornado run on it.
    Framework{LoopKind::Asyncio, {"", ""}, {"/asyncio/base_events.py", ""}},
};

// eventlet needs greenlet's C module; so do others (SQLAlchemy's asyncio
// layer), so it is a hint until frames confirm it.
constexpr std::string_view kGreenletModule = "/greenlet/";
// asyncio's C accelerator: the process imported asyncio (a loop module, not
// a framework: twisted and tornado import it too).
constexpr std::string_view kAsyncioModule = "/_asyncio.";

// Frames that exist only while a loop runs an iteration (what it calls sits
// above them): evidence that a thread outside epoll_wait is a loop mid-
// iteration. Function names, not just files: gevent's threadpool or
// twisted's deferreds also run outside any loop.
struct LoopRunner {
  std::string_view file_suffix;
  std::string_view function;  // co_name; qualnames end with ".<name>"
};

constexpr std::array kRunners{
    LoopRunner{"asyncio/base_events.py", "run_forever"},
    LoopRunner{"asyncio/base_events.py", "_run_once"},
    LoopRunner{"asyncio/runners.py", "run"},
    LoopRunner{"twisted/internet/base.py", "mainLoop"},
    LoopRunner{"tornado/ioloop.py", "start"},
    LoopRunner{"eventlet/hubs/hub.py", "run"},
    LoopRunner{"gevent/hub.py", "run"},
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool names(std::string_view function, std::string_view name) {
  return function == name || (ends_with(function, name) && function.size() > name.size() &&
                              function[function.size() - name.size() - 1] == '.');
}

bool matches(std::string_view path, const std::array<std::string_view, 2>& patterns) {
  for (std::string_view p : patterns)
    if (!p.empty() && path.find(p) != std::string_view::npos) return true;
  return false;
}

}  // namespace

void ModuleEvidence::add(std::string_view path) {
  // Rows are in precedence order: the first row that matches any mapping wins.
  for (std::size_t i = 0; i < kFrameworks.size() && i < row_; ++i) {
    if (matches(path, kFrameworks[i].modules)) {
      row_ = i;
      break;
    }
  }
  if (path.find(kGreenletModule) != std::string_view::npos) greenlet_ = true;
  if (path.find(kAsyncioModule) != std::string_view::npos) asyncio_ = true;
}

bool ModuleEvidence::loop_module() const {
  return row_ < kFrameworks.size() || greenlet_ || asyncio_;
}

LoopKind ModuleEvidence::kind() const {
  if (row_ < kFrameworks.size()) return kFrameworks[row_].kind;
  return greenlet_ ? LoopKind::Eventlet : LoopKind::Python;
}

bool decided_by_modules(LoopKind k) {
  for (const Framework& f : kFrameworks)
    if (f.kind == k) return !f.modules[0].empty();
  return false;
}

std::optional<LoopKind> loop_from_frames(const std::vector<PyFrame>& frames) {
  if (frames.empty()) return std::nullopt;
  for (const Framework& f : kFrameworks)
    for (const PyFrame& fr : frames)
      if (matches(fr.file, f.frames)) return f.kind;
  return LoopKind::Python;
}

bool frames_run_a_loop(const std::vector<PyFrame>& frames, bool gevent) {
  for (const PyFrame& f : frames)
    for (const LoopRunner& r : kRunners)
      if (ends_with(f.file, r.file_suffix) && names(f.function, r.function)) return true;
  // A greenlet's frames end where it began, never in a module's top level.
  return gevent && !frames.empty() && frames.back().function != "<module>";
}

LoopKind python_loop_kind(LoopKind from_modules, std::optional<LoopKind> from_stack) {
  if (decided_by_modules(from_modules)) return from_modules;
  return from_stack.value_or(from_modules);
}

}  // namespace loopstall
