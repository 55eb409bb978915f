// frameworks: which framework a loop thread's Python stack (in epoll_wait)
// shows, and how that combines with what the process's native code says.
#include <doctest/doctest.h>

#include "loopstall/frameworks.hpp"

using namespace loopstall;

namespace {

// Innermost first, as PyProcess::stack() returns them.
std::vector<PyFrame> stack(std::initializer_list<const char*> files) {
  std::vector<PyFrame> out;
  for (const char* f : files) out.push_back({"f", f, 1});
  return out;
}

}  // namespace

TEST_CASE("loop_from_frames: each framework's poller, as seen on Debian 12") {
  CHECK(loop_from_frames(stack({"/usr/lib/python3.11/selectors.py", "/usr/lib/python3.11/asyncio/base_events.py",
                                "/usr/lib/python3.11/asyncio/base_events.py", "/usr/lib/python3.11/asyncio/runners.py",
                                "/srv/app.py"})) == LoopKind::Asyncio);
  // tornado and aiohttp run on asyncio: asyncio.
  CHECK(loop_from_frames(stack({"/usr/lib/python3.11/selectors.py", "/usr/lib/python3.11/asyncio/base_events.py",
                                "/usr/lib/python3/dist-packages/tornado/platform/asyncio.py", "/srv/app.py"})) ==
        LoopKind::Asyncio);
  CHECK(loop_from_frames(stack({"/usr/lib/python3/dist-packages/twisted/internet/epollreactor.py",
                                "/usr/lib/python3/dist-packages/twisted/internet/base.py", "/srv/app.py"})) ==
        LoopKind::Twisted);
  CHECK(loop_from_frames(stack({"/usr/lib/python3/dist-packages/eventlet/hubs/poll.py",
                                "/usr/lib/python3/dist-packages/eventlet/hubs/hub.py"})) == LoopKind::Eventlet);
  // pyenv interpreters name their stdlib differently: same directories.
  CHECK(loop_from_frames(stack({"/root/.pyenv/versions/3.8.18/lib/python3.8/asyncio/base_events.py"})) ==
        LoopKind::Asyncio);
}

TEST_CASE("loop_from_frames: precedence, unknown loops, nothing read") {
  // twisted's asyncio reactor: twisted is what the user runs.
  CHECK(loop_from_frames(stack({"/usr/lib/python3.11/asyncio/base_events.py",
                                "/usr/lib/python3/dist-packages/twisted/internet/asyncioreactor.py"})) ==
        LoopKind::Twisted);
  // A hand-written selectors loop is a Python loop of no known framework.
  CHECK(loop_from_frames(stack({"/usr/lib/python3.11/selectors.py", "/srv/myloop.py"})) == LoopKind::Python);
  // Names that only look alike.
  CHECK(loop_from_frames(stack({"/srv/asyncio_base_events.py", "/srv/twisted.py", "/srv/eventlet/hub.py"})) ==
        LoopKind::Python);
  CHECK(loop_from_frames(stack({""})) == LoopKind::Python);
  CHECK_FALSE(loop_from_frames({}).has_value());
}

TEST_CASE("python_loop_kind: native code settles, frames refine, hints stay hints") {
  CHECK(python_loop_kind(LoopKind::Gevent, LoopKind::Asyncio) == LoopKind::Gevent);
  CHECK(python_loop_kind(LoopKind::Uvloop, LoopKind::Python) == LoopKind::Uvloop);
  CHECK(python_loop_kind(LoopKind::Python, LoopKind::Twisted) == LoopKind::Twisted);
  CHECK(python_loop_kind(LoopKind::Python, std::nullopt) == LoopKind::Python);
  // greenlet without gevent: eventlet until a stack says otherwise
  // (SQLAlchemy's asyncio layer loads greenlet too).
  CHECK(python_loop_kind(LoopKind::Eventlet, std::nullopt) == LoopKind::Eventlet);
  CHECK(python_loop_kind(LoopKind::Eventlet, LoopKind::Asyncio) == LoopKind::Asyncio);
  CHECK(decided_by_modules(LoopKind::Gevent));
  CHECK(decided_by_modules(LoopKind::Uvloop));
  CHECK_FALSE(decided_by_modules(LoopKind::Eventlet));
  CHECK_FALSE(decided_by_modules(LoopKind::Asyncio));
  CHECK_FALSE(decided_by_modules(LoopKind::Python));
}
