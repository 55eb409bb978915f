// From stall events to weighted stacks, and the stacks merged into a tree,
// folded or speedscope form (see flamegraph.hpp for how a stall's time is
// shared among its stacks).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "event_fields.hpp"
#include "loopstall/flamegraph.hpp"
#include "loopstall/printable.hpp"
#include "loopstall/report.hpp"

namespace loopstall {
namespace {

using nlohmann::json;

using event_fields::num;
using event_fields::str;

// A weight from outside data: not negative, not NaN, and small enough that
// sums and ratios of them stay finite.
double weight(const json& j, const char* key) {
  const double v = num(j, key);
  return v > 0 ? std::min(v, 1e12) : 0.0;
}

// A frame name safe everywhere it goes: a terminal, XML, and folded stacks,
// where ';' separates frames.
std::string frame_label(std::string_view raw) {
  std::string s = printable(raw);
  std::replace(s.begin(), s.end(), ';', ',');
  return s;
}

FlameFrame python_frame(const json& f) {
  FlameFrame fr{frame_label(python_frame_name(f, true)), FrameKind::Python, str(f, "file"), -1};
  if (const auto l = f.find("line"); l != f.end() && l->is_number_integer()) fr.line = l->get<long long>();
  return fr;
}

// The interpreter's own frames (the eval loop and below): the Python frames
// stand for them.
bool interpreter_module(const std::string& module, const std::string& exe) {
  const auto slash = module.rfind('/');
  const std::string base = slash == std::string::npos ? module : module.substr(slash + 1);
  return (!exe.empty() && module == exe) || base.rfind("libpython", 0) == 0;
}

// Native frames root first: with Python frames, only those the Python code
// called into (innermost up to the first interpreter frame); without, all.
std::vector<FlameFrame> native_frames(const json& ev, bool above_python) {
  std::vector<FlameFrame> out;
  const auto ns = ev.find("native_stack");
  if (ns == ev.end() || !ns->is_array()) return out;
  const std::string exe = str(ev, "exe");
  for (const json& f : *ns) {
    if (!f.is_object()) continue;
    if (above_python && interpreter_module(str(f, "module"), exe)) break;
    out.push_back({frame_label(native_frame_name(f)), FrameKind::Native, {}, -1});
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// How a stall's time went, as leaf frames with their fractions of it.
std::vector<std::pair<FlameFrame, double>> state_leaves(const json& ev) {
  const json bd = ev.contains("breakdown_ms") && ev["breakdown_ms"].is_object() ? ev["breakdown_ms"] : json::object();
  const double gc = weight(bd, "gc"), cpu = std::max(0.0, weight(bd, "on_cpu") - gc), blocked = weight(bd, "blocked"),
               runq = weight(bd, "runqueue");
  const double sum = gc + cpu + blocked + runq;
  std::vector<std::pair<FlameFrame, double>> out;
  if (sum <= 0) {  // no breakdown: the stall's cause names it all
    const std::string cause = str(ev, "cause");
    if (cause == "gc")
      out.push_back({{"[GC]", FrameKind::Gc, {}, -1}, 1.0});
    else if (cause == "runqueue")
      out.push_back({{"[runqueue]", FrameKind::Runqueue, {}, -1}, 1.0});
    else if (cause == "blocking_syscall")
      out.push_back({{"[blocked]", FrameKind::Blocked, {}, -1}, 1.0});
    else
      out.push_back({{"[on-CPU]", FrameKind::OnCpu, {}, -1}, 1.0});
    return out;
  }
  if (cpu > 0) out.push_back({{"[on-CPU]", FrameKind::OnCpu, {}, -1}, cpu / sum});
  if (gc > 0) out.push_back({{"[GC]", FrameKind::Gc, {}, -1}, gc / sum});
  if (runq > 0) out.push_back({{"[runqueue]", FrameKind::Runqueue, {}, -1}, runq / sum});
  if (blocked > 0) {
    std::vector<std::pair<std::string, double>> calls;
    double calls_ms = 0;
    if (const auto sc = ev.find("syscalls"); sc != ev.end() && sc->is_array())
      for (const json& s : *sc)
        if (s.is_object() && weight(s, "ms") > 0) {
          calls.emplace_back(str(s, "name"), weight(s, "ms"));
          calls_ms += weight(s, "ms");
        }
    if (calls.empty()) out.push_back({{"[blocked]", FrameKind::Blocked, {}, -1}, blocked / sum});
    for (const auto& [name, ms] : calls)
      out.push_back(
          {{"[blocked: " + frame_label(name) + "]", FrameKind::Blocked, {}, -1}, blocked / sum * ms / calls_ms});
  }
  return out;
}

std::string path_key(const std::vector<FlameFrame>& frames) {
  std::string key;
  for (const FlameFrame& f : frames) {
    if (!key.empty()) key += ';';
    key += f.name;
  }
  return key;
}

struct Merged {
  std::vector<FlameFrame> frames;
  double a = 0, b = 0;
};

void merge_into(std::map<std::string, Merged>& out, const std::vector<FlameStack>& stacks, bool into_b) {
  for (const FlameStack& s : stacks) {
    Merged& m = out[path_key(s.frames)];
    if (m.frames.empty()) m.frames = s.frames;
    (into_b ? m.b : m.a) += s.ms;
  }
}

FlameGraph build(const std::map<std::string, Merged>& merged, bool differential) {
  FlameGraph g;
  g.differential = differential;
  g.nodes.push_back({{"all", FrameKind::Root, {}, -1}, 0, 0, 0, 0, 0, {}});
  std::map<std::pair<std::size_t, std::string>, std::size_t> index;
  for (const auto& entry : merged) {
    const Merged& m = entry.second;  // a plain reference: clang 14 captures no structured binding
    const double width = differential ? std::max(m.a, m.b) : m.b;
    std::size_t at = 0;
    auto add = [&](std::size_t n) {
      g.nodes[n].width_ms += width;
      g.nodes[n].a_ms += m.a;
      g.nodes[n].b_ms += m.b;
    };
    add(0);
    for (const FlameFrame& f : m.frames) {
      auto [it, fresh] = index.try_emplace({at, f.name}, g.nodes.size());
      if (fresh) {
        g.nodes.push_back({f, 0, 0, 0, at, g.nodes[at].depth + 1, {}});
        g.nodes[at].children.push_back(it->second);
      }
      at = it->second;
      add(at);
    }
  }
  for (FlameNode& n : g.nodes)
    std::sort(n.children.begin(), n.children.end(),
              [&](std::size_t x, std::size_t y) { return g.nodes[x].frame.name < g.nodes[y].frame.name; });
  return g;
}

}  // namespace

std::vector<FlameStack> stall_stacks(const Capture& c) {
  std::vector<FlameStack> out;
  for (std::size_t index = 0; index < c.stalls.size(); ++index) {
    const json& ev = c.stalls[index];
    const double ms = num(ev, "duration_ms");
    if (ms <= 0) continue;
    const std::string service = str(ev, "service");
    const FlameFrame loop{frame_label((service.empty() ? str(ev, "comm") : service) + " [" + str(ev, "loop") + "]"),
                          FrameKind::Loop,
                          {},
                          -1};
    // Python stacks (innermost first in the event) and their samples.
    std::vector<std::pair<std::vector<FlameFrame>, double>> py;
    double samples = 0;
    if (const auto st = ev.find("python_stacks"); st != ev.end() && st->is_array())
      for (const json& s : *st) {
        const auto fr = s.find("frames");
        if (!s.is_object() || fr == s.end() || !fr->is_array() || weight(s, "samples") <= 0) continue;
        std::vector<FlameFrame> frames;
        for (auto f = fr->rbegin(); f != fr->rend(); ++f)
          if (f->is_object()) frames.push_back(python_frame(*f));
        py.emplace_back(std::move(frames), weight(s, "samples"));
        samples += weight(s, "samples");
      }
    if (py.empty()) {
      py.emplace_back(std::vector<FlameFrame>{}, 1.0);
      samples = 1;
    }
    // The native frames were seen with the most sampled Python stack (the
    // event lists it first).
    const std::vector<FlameFrame> native = native_frames(ev, !py.front().first.empty());
    const auto leaves = state_leaves(ev);
    for (std::size_t i = 0; i < py.size(); ++i) {
      std::vector<FlameFrame> frames{loop};
      frames.insert(frames.end(), py[i].first.begin(), py[i].first.end());
      if (i == 0) frames.insert(frames.end(), native.begin(), native.end());
      for (const auto& [leaf, share] : leaves) {
        FlameStack s{frames, ms * py[i].second / samples * share, index};
        s.frames.push_back(leaf);
        out.push_back(std::move(s));
      }
    }
  }
  return out;
}

int FlameGraph::max_depth() const {
  int d = 0;
  for (const FlameNode& n : nodes) d = std::max(d, n.depth);
  return d;
}

FlameGraph flame_graph(const std::vector<FlameStack>& stacks) {
  std::map<std::string, Merged> merged;
  merge_into(merged, stacks, true);
  return build(merged, false);
}

FlameGraph diff_flame_graph(const std::vector<FlameStack>& a, const std::vector<FlameStack>& b) {
  std::map<std::string, Merged> merged;
  merge_into(merged, a, false);
  merge_into(merged, b, true);
  return build(merged, true);
}

std::string folded_stacks(const std::vector<FlameStack>& stacks) {
  std::map<std::string, Merged> merged;
  merge_into(merged, stacks, true);
  std::string out;
  for (const auto& [key, m] : merged) {
    const long long us = std::llround(m.b * 1000);
    if (us > 0) out += key + " " + std::to_string(us) + "\n";
  }
  return out;
}

nlohmann::ordered_json speedscope_profile(const std::vector<FlameStack>& stacks, const std::string& name) {
  std::map<std::string, Merged> merged;
  merge_into(merged, stacks, true);
  nlohmann::ordered_json frames = nlohmann::ordered_json::array(), samples = nlohmann::ordered_json::array(),
                         weights = nlohmann::ordered_json::array();
  std::map<std::string, std::size_t> frame_index;
  long long total = 0;
  for (const auto& [key, m] : merged) {
    const long long us = std::llround(m.b * 1000);
    if (us <= 0) continue;
    nlohmann::ordered_json sample = nlohmann::ordered_json::array();
    for (const FlameFrame& f : m.frames) {
      auto [it, fresh] = frame_index.try_emplace(f.name, frames.size());
      if (fresh) {
        nlohmann::ordered_json fr = {{"name", f.name}};
        if (!f.file.empty()) fr["file"] = f.file;
        if (f.line >= 0) fr["line"] = f.line;
        frames.push_back(std::move(fr));
      }
      sample.push_back(it->second);
    }
    samples.push_back(std::move(sample));
    weights.push_back(us);
    total += us;
  }
  nlohmann::ordered_json profile = {{"type", "sampled"}, {"name", "stall time"}, {"unit", "microseconds"},
                                    {"startValue", 0},   {"endValue", total},    {"samples", std::move(samples)},
                                    {"weights", weights}};
  return {{"$schema", "https://www.speedscope.app/file-format-schema.json"},
          {"shared", {{"frames", std::move(frames)}}},
          {"profiles", nlohmann::ordered_json::array({std::move(profile)})},
          {"name", name},
          {"activeProfileIndex", 0},
          {"exporter", "loopstall"}};
}

}  // namespace loopstall
