#include "loopstall/stall.hpp"

#include <algorithm>

#include "loopstall/sink.hpp"

namespace loopstall {

std::string_view to_string(LoopKind k) {
  switch (k) {
    case LoopKind::Gevent: return "gevent";
    case LoopKind::Asyncio: return "asyncio";
    case LoopKind::Uvloop: return "uvloop";
    case LoopKind::Eventlet: return "eventlet";
    case LoopKind::Twisted: return "twisted";
    case LoopKind::Python: return "python";
    case LoopKind::Epoll: return "epoll";
  }
  return "epoll";
}

std::string_view to_string(Cause c) {
  switch (c) {
    case Cause::Cpu: return "cpu";
    case Cause::BlockingSyscall: return "blocking_syscall";
    case Cause::Runqueue: return "runqueue";
    case Cause::Gc: return "gc";
  }
  return "cpu";
}

Cause classify_cause(const Breakdown& b) {
  // gc is part of on_cpu: compare the CPU time outside GC with GC itself.
  const double cpu = b.on_cpu_ms > b.gc_ms ? b.on_cpu_ms - b.gc_ms : 0;
  Cause best = Cause::Cpu;
  double max = cpu;
  if (b.blocked_ms > max) {
    best = Cause::BlockingSyscall;
    max = b.blocked_ms;
  }
  if (b.runqueue_ms > max) {
    best = Cause::Runqueue;
    max = b.runqueue_ms;
  }
  if (b.gc_ms > max) {
    best = Cause::Gc;
  }
  return best;
}

std::string culprit_summary(const StallReport& r) {
  std::string s = std::string(to_string(r.cause));
  if (!r.syscalls.empty()) s += " in " + r.syscalls.front().name;
  if (!r.python_stacks.empty() && !r.python_stacks.front().frames.empty())
    s += " at " + r.python_stacks.front().frames.front().function;
  return s;
}

namespace {

std::string_view base_name(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string frame_label(const PyFrame& f) {
  std::string s = f.function;
  s += " (";
  s += base_name(f.file);
  if (f.line) {
    s += ':';
    s += std::to_string(*f.line);
  }
  s += ')';
  return s;
}

std::string frame_label(const NativeFrame& f) {
  std::string s = f.symbol.empty() ? "?" : f.symbol;
  s += " (";
  s += base_name(f.module);
  s += ')';
  return s;
}

bool in_interpreter(const NativeFrame& f, const StallReport& r) {
  const std::string_view mod = base_name(f.module);
  return f.module == r.exe || mod.starts_with("libpython") || mod.starts_with("python");
}

std::vector<CulpritShare> culprit_shares(const StallReport& r) {
  std::vector<CulpritShare> out;
  double samples = 0;
  for (const PyStack& st : r.python_stacks)
    if (!st.frames.empty()) samples += static_cast<double>(st.samples);
  for (const PyStack& st : r.python_stacks) {
    if (st.frames.empty() || samples <= 0) continue;
    PyFrame fn = st.frames.front();
    fn.line.reset();
    const std::string name = frame_label(fn);
    auto it = std::find_if(out.begin(), out.end(), [&](const CulpritShare& c) { return c.name == name; });
    if (it == out.end()) {
      out.push_back({name, 0, &st});
      it = out.end() - 1;
    }
    it->ms += r.duration_ms * static_cast<double>(st.samples) / samples;
    if (st.samples > it->stack->samples) it->stack = &st;
  }
  if (out.empty()) {
    const auto native = std::find_if(r.native_stack.begin(), r.native_stack.end(),
                                     [&](const NativeFrame& f) { return !f.symbol.empty() && !in_interpreter(f, r); });
    if (native != r.native_stack.end())
      out.push_back({frame_label(*native), r.duration_ms});
    else if (r.cause == Cause::BlockingSyscall && !r.syscalls.empty())
      out.push_back({"[blocked in " + r.syscalls.front().name + "]", r.duration_ms});
    else
      out.push_back({"[" + std::string(to_string(r.cause)) + "]", r.duration_ms});
  }
  std::stable_sort(out.begin(), out.end(), [](const CulpritShare& a, const CulpritShare& b) { return a.ms > b.ms; });
  return out;
}

void ProcessTotals::add_culprits(const StallReport& r) {
  for (const CulpritShare& c : culprit_shares(r)) {
    const bool known = culprit_ms.contains(c.name) || culprit_ms.size() < kMaxCulprits;
    culprit_ms[known ? c.name : "[other]"] += c.ms;
  }
}

std::string ProcessTotals::top_culprit() const {
  const auto top = std::max_element(culprit_ms.begin(), culprit_ms.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; });
  return top == culprit_ms.end() ? "" : top->first;
}

}  // namespace loopstall
