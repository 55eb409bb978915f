// Records a snapshot of a thread for the offline replay test:
//   loopstall_native_record [--ptrace] [--stack-bytes N] [--description TEXT] PID OUT
//   loopstall_native_record --workload usleep|sqlite OUT
// The blocked-thread snapshot uses /proc (ip and sp only) as the product's
// fallback does; --ptrace takes full registers of a running thread. Only the
// stack bytes the unwind read and the code mappings are kept (small files).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/native/unwinder.hpp"
#include "loopstall/procfs.hpp"
#include "recording.hpp"
#include "test_support.hpp"

using namespace loopstall::native;
using namespace loopstall::native::test;
using namespace std::chrono_literals;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: loopstall_native_record [--ptrace] [--stack-bytes N] [--description TEXT] PID OUT\n"
               "       loopstall_native_record --workload usleep|sqlite OUT\n");
  return 2;
}

// The maps lines of code modules (and the vDSO): all the unwinder uses.
std::string code_maps(const std::string& text) {
  std::set<std::string> paths;
  for (const auto& m : code_modules(parse_maps(text))) paths.insert(m.path);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    const auto m = parse_maps(line);
    if (m.size() == 1 && paths.count(m[0].path) != 0) out += line + "\n";
  }
  return out;
}

std::optional<Recording> record(pid_t pid, bool use_ptrace, std::size_t stack_bytes, const std::string& description) {
  const auto snap = use_ptrace ? ptrace_snapshot(pid, stack_bytes) : snapshot_blocked_thread(pid, pid, stack_bytes);
  const auto maps = loopstall::read_maps(static_cast<std::uint32_t>(pid));
  if (!snap || !maps) {
    std::fprintf(stderr, "cannot snapshot pid %d\n", static_cast<int>(pid));
    return std::nullopt;
  }
  Recording rec;
  rec.description = description;
  rec.snap = *snap;
  rec.maps = code_maps(*maps);
  for (const auto& m : code_modules(parse_maps(rec.maps))) {
    if (m.vdso) continue;
    if (auto id = read_build_id(m.path)) rec.build_ids.emplace_back(m.path, *id);
  }
  NativeUnwinder unwinder;
  const auto live = unwinder.unwind_frames(pid, *snap);
  // Keep only what the offline unwind reads, then replay the trimmed copy.
  unwinder.unwind_recorded(rec.maps, rec.snap);
  rec.snap.stack.resize(std::min(rec.snap.stack.size(), (unwinder.stats().last_stack_bytes_used + 15) / 16 * 16));
  const auto replayed = unwinder.unwind_recorded(rec.maps, rec.snap);
  for (const auto& f : replayed) rec.expected.push_back(f.frame);
  std::fprintf(stderr, "live:\n%s\nreplayed from the recording:\n%s", format_frames(live).c_str(),
               format_frames(replayed).c_str());
  if (replayed.size() != live.size()) std::fprintf(stderr, "WARNING: the replay differs from the live unwind\n");
  return rec;
}

std::optional<Recording> record_workload(const std::string& name) {
  if (name == "usleep") {
    Child child({kDebianPython, "-c", kUsleepScript});
    if (child.read_line(10s) != "ready" || !wait_in_syscall(child.pid(), kClockNanosleep, 10s)) return std::nullopt;
    return record(child.pid(), false, 16 * 1024, "python3.11 blocked in ctypes usleep; /proc snapshot (ip, sp)");
  }
  if (name == "sqlite") {
    Child child({kDebianPython, "-c", kSqliteScript});
    if (child.read_line(10s) != "ready") return std::nullopt;
    std::this_thread::sleep_for(300ms);
    for (int attempt = 0; attempt < 10; ++attempt) {
      auto rec = record(child.pid(), true, 16 * 1024, "python3.11 running a SQLite query; ptrace snapshot (all regs)");
      if (rec && !rec->expected.empty() && rec->expected[0].module.find("libsqlite3") != std::string::npos) return rec;
      std::this_thread::sleep_for(30ms);
    }
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  bool use_ptrace = false;
  std::size_t stack_bytes = 16 * 1024;
  std::string description = "recorded snapshot";
  std::string workload;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    const std::string a = argv[i];
    if (a == "--ptrace") {
      use_ptrace = true;
    } else if (a == "--stack-bytes" && i + 1 < argc) {
      stack_bytes = std::stoul(argv[++i]);
    } else if (a == "--description" && i + 1 < argc) {
      description = argv[++i];
    } else if (a == "--workload" && i + 1 < argc) {
      workload = argv[++i];
    } else {
      return usage();
    }
  }
  std::optional<Recording> rec;
  if (!workload.empty()) {
    if (argc - i != 1) return usage();
    rec = record_workload(workload);
  } else {
    if (argc - i != 2) return usage();
    rec = record(static_cast<pid_t>(std::stol(argv[i])), use_ptrace, stack_bytes, description);
  }
  if (!rec || !save_recording(argv[argc - 1], *rec)) {
    std::fprintf(stderr, "recording failed\n");
    return 1;
  }
  std::fprintf(stderr, "wrote %s: %zu stack bytes, %zu maps bytes, %zu frames\n", argv[argc - 1],
               rec->snap.stack.size(), rec->maps.size(), rec->expected.size());
  return 0;
}
