// Private state of loopstall::Engine, shared by the files that split its
// lifecycle by concern (programs.cpp, maps.cpp, ringbuf.cpp, stats.cpp).
#pragma once

#include <bpf/libbpf.h>

#include <string>
#include <utility>
#include <vector>

#include "loopstall.skel.h"
#include "loopstall/engine.hpp"

namespace loopstall {

struct Engine::Impl {
  loopstall_bpf* skel = nullptr;
  ring_buffer* rb = nullptr;
  const EventHandler* handler = nullptr;  // valid during poll()
  int attached = 0;
  std::vector<std::pair<std::string, int>> attach_failures;
  int ncpus = 1;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (rb) ring_buffer__free(rb);
    if (skel) loopstall_bpf__destroy(skel);  // detaches every program
  }
};

void open_ring_buffer(Engine::Impl& impl);

// errno-style libbpf result -> EngineError with context.
[[noreturn]] void throw_bpf_error(const std::string& what, int err);

}  // namespace loopstall
