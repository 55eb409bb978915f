// Flame graphs of stall time from a capture file (`loopstall flamegraph`,
// `loopstall diff -o`): each stall's duration spread over the stacks it was
// seen in, as folded stacks, speedscope JSON or an interactive SVG.
//
// A stack, root first: the loop ("python3.11 [gevent]" or its service), the
// Python frames outermost first, the native frames the innermost Python
// frame called into (the part of the native stack above the interpreter),
// and a leaf naming how the time went: [on-CPU], [GC], [runqueue] or
// [blocked: SYSCALL]. The capture keeps per stall its Python stacks with
// sample counts, one native stack and the time breakdown; it does not say
// which stack was in which state, so a stall's time is shared among its
// Python stacks by samples, and each share among the states by the
// breakdown (blocked time among the syscalls by their blocked time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loopstall/capture_file.hpp"

namespace loopstall {

enum class FrameKind : std::uint8_t { Root, Loop, Python, Native, OnCpu, Gc, Runqueue, Blocked };

struct FlameFrame {
  std::string name;  // as drawn: `function (file:line)`, `symbol (module)`, `[on-CPU]`...
  FrameKind kind = FrameKind::Python;
  std::string file;  // Python frames: for speedscope
  long long line = -1;
};

struct FlameStack {
  std::vector<FlameFrame> frames;  // root (the loop) first, the state leaf last
  double ms = 0;
  std::size_t stall = 0;  // index of its stall in Capture::stalls
};

// Every stall of the capture as weighted stacks (the weights of one stall add
// up to its duration).
std::vector<FlameStack> stall_stacks(const Capture& c);

// Stacks merged into a tree. nodes[0] is the root ("all"). For a
// differential graph a_ms/b_ms hold each side's time and width_ms the larger
// of the two per stack, so what vanished in B still shows.
struct FlameNode {
  FlameFrame frame;
  double width_ms = 0, a_ms = 0, b_ms = 0;
  std::size_t parent = 0;
  int depth = 0;
  std::vector<std::size_t> children;  // by name
};

struct FlameGraph {
  std::vector<FlameNode> nodes;
  bool differential = false;
  int max_depth() const;
};

FlameGraph flame_graph(const std::vector<FlameStack>& stacks);
FlameGraph diff_flame_graph(const std::vector<FlameStack>& a, const std::vector<FlameStack>& b);

// Brendan Gregg's folded stacks: `frame;frame;frame weight`, one line per
// distinct stack, sorted, weight in microseconds of stalled time.
std::string folded_stacks(const std::vector<FlameStack>& stacks);

// speedscope's file format: one "sampled" profile weighted by stall time (µs).
nlohmann::ordered_json speedscope_profile(const std::vector<FlameStack>& stacks, const std::string& name);

struct SvgOptions {
  std::string title = "Stall time";
  std::string subtitle;
  double width_px = 1200;
};

// A self-contained interactive SVG (hover details, click to zoom, search).
std::string flame_svg(const FlameGraph& g, const SvgOptions& opt);

// The script the SVG carries (flamegraph_script.cpp).
extern const char* const kFlameScript;

}  // namespace loopstall
