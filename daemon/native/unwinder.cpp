#include "loopstall/native/unwinder.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "dwfl_process.hpp"
#include "loopstall/phase_times.hpp"
#include "loopstall/procfs.hpp"

namespace loopstall::native {
namespace {

// FNV-1a over what the Dwfl is built from: the code modules and where they
// sit. Anonymous mappings (malloc arenas, Python's obmalloc) come and go all
// the time and must not invalidate the cache.
std::uint64_t code_hash(const std::vector<Mapping>& maps) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  for (const ModuleSpan& s : code_modules(maps)) {
    mix(s.path.data(), s.path.size());
    mix(&s.start, sizeof s.start);
    mix(&s.end, sizeof s.end);
    mix(&maps[s.first_mapping].inode, sizeof maps[s.first_mapping].inode);
  }
  return h;
}

}  // namespace

// Fields of /proc/PID/stat: a cheap probe (no walk over the mappings, unlike
// reading maps). A new starttime is a new process behind a reused pid; exec
// moves the code and the stack (ASLR); exec, dlopen and dlclose change
// vsize -- and so does the anonymous memory a process maps all the time.
std::optional<NativeUnwinder::Probe> NativeUnwinder::read_probe(pid_t pid) {
  const auto stat = read_stat(static_cast<std::uint32_t>(pid));
  if (!stat) return std::nullopt;
  Probe p;
  for (const auto& [n, out] : {std::pair{22, &p.starttime}, {23, &p.vsize}, {26, &p.startcode}, {28, &p.startstack}}) {
    const auto f = stat_field(*stat, n);
    if (!f) return std::nullopt;
    std::from_chars(f->data(), f->data() + f->size(), *out);
  }
  return p;
}

// The probe changed: only vsize (the same process image) with the same
// executable mappings is anonymous memory (Python's arenas, 3.11's data
// stack chunks: a deep call maps one and frees it at every stall).
bool NativeUnwinder::same_code(pid_t pid, Entry& e, const Probe& now) {
  if (now.starttime != e.probe.starttime || now.startcode != e.probe.startcode || now.startstack != e.probe.startstack)
    return false;
  const auto exec_kb = read_exec_mapped_kb(static_cast<std::uint32_t>(pid));
  if (!exec_kb || *exec_kb != e.exec_kb) return false;
  e.probe = now;
  return true;
}

NativeUnwinder::NativeUnwinder() : NativeUnwinder(Options{}) {}
NativeUnwinder::NativeUnwinder(Options options) : options_(options) {
  if (options_.max_processes == 0) options_.max_processes = 1;
}
NativeUnwinder::~NativeUnwinder() = default;

void NativeUnwinder::forget(pid_t pid) {
  cache_.erase(pid);
}

DwflProcess* NativeUnwinder::process_for(pid_t pid) {
  auto it = cache_.find(pid);
  const auto probe = read_probe(pid);
  if (it != cache_.end()) {
    Entry& e = it->second;
    // Exited (or exiting): a cached Dwfl still unwinds the snapshot, which
    // holds the stack, from the files it already has open.
    const bool gone = !probe;
    if (gone || *probe == e.probe || same_code(pid, e, *probe)) {
      e.process->set_live(!gone);
      e.last_use = ++tick_;
      ++stats_.cache_hits;
      return e.process.get();
    }
  }
  if (!probe) return nullptr;
  // Before the maps: a dlopen between the two reads shows next time.
  const auto exec_kb = read_exec_mapped_kb(static_cast<std::uint32_t>(pid));
  if (!exec_kb) return nullptr;
  const auto text = read_maps(static_cast<std::uint32_t>(pid));
  if (!text || text->empty()) return nullptr;  // gone, or a kernel thread
  std::vector<Mapping> maps = parse_maps(*text);
  const std::uint64_t hash = code_hash(maps);
  if (it != cache_.end() && it->second.code_hash == hash) {
    // Only anonymous memory changed (malloc, Python's arenas).
    Entry& e = it->second;
    e.process->update_maps(std::move(maps));
    e.process->set_live(true);
    e.probe = *probe;
    e.exec_kb = *exec_kb;
    e.last_use = ++tick_;
    ++stats_.cache_hits;
    return e.process.get();
  }
  // New process, exec, dlopen/dlclose or pid reuse.
  if (it != cache_.end()) cache_.erase(it);
  auto p = DwflProcess::create(
      pid, std::move(maps),
      {.live = true, .read_live_memory = options_.read_live_memory, .use_debug_files = options_.use_debug_files});
  if (!p) return nullptr;
  ++stats_.dwfl_builds;
  while (cache_.size() >= options_.max_processes) {
    auto oldest = cache_.begin();
    for (auto i = cache_.begin(); i != cache_.end(); ++i) {
      if (i->second.last_use < oldest->second.last_use) oldest = i;
    }
    cache_.erase(oldest);
    ++stats_.evictions;
  }
  Entry& e = cache_[pid];
  e.process = std::move(p);
  e.code_hash = hash;
  e.probe = *probe;
  e.exec_kb = *exec_kb;
  e.last_use = ++tick_;
  return e.process.get();
}

std::vector<UnwoundFrame> NativeUnwinder::run(DwflProcess& p, const StackSnapshot& snap, std::size_t max_frames) {
  std::vector<RawFrame> raw;
  {
    const PhaseTimer timer(Phase::kNativeUnwind);
    raw = p.unwind(snap, max_frames);
  }
  const PhaseTimer timer(Phase::kSymbolize);
  std::vector<UnwoundFrame> out;
  for (const RawFrame& f : raw) {
    UnwoundFrame u{f.pc, f.activation, f.recovered, p.describe(f, symbolizer_)};
    u.file_offset = p.file_offset(f).value_or(u.frame.offset);
    out.push_back(std::move(u));
  }
  stats_.last_stack_bytes_used = p.stack_bytes_used();
  return out;
}

std::vector<UnwoundFrame> NativeUnwinder::unwind_frames(pid_t pid, const StackSnapshot& snap, std::size_t max_frames) {
  ++stats_.unwinds;
  stats_.last_stack_bytes_used = 0;
  if (pid <= 0) return {};
  DwflProcess* p = nullptr;
  {
    const PhaseTimer timer(Phase::kNativeSetup);
    p = process_for(pid);
  }
  return p != nullptr ? run(*p, snap, max_frames) : std::vector<UnwoundFrame>{};
}

std::vector<NativeFrame> NativeUnwinder::unwind(pid_t pid, const StackSnapshot& snap, std::size_t max_frames) {
  std::vector<NativeFrame> out;
  for (auto& f : unwind_frames(pid, snap, max_frames)) out.push_back(std::move(f.frame));
  return out;
}

std::vector<UnwoundFrame> NativeUnwinder::unwind_recorded(std::string_view maps_text, const StackSnapshot& snap,
                                                          std::size_t max_frames) {
  ++stats_.unwinds;
  stats_.last_stack_bytes_used = 0;
  // Any positive number: libdwfl wants one; nothing reads /proc with it.
  auto p = DwflProcess::create(1, parse_maps(maps_text),
                               {.live = false, .read_live_memory = false, .recorded = true, .use_debug_files = false});
  return p ? run(*p, snap, max_frames) : std::vector<UnwoundFrame>{};
}

}  // namespace loopstall::native
