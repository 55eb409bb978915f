// What inspect_process reads from /proc/PID (maps, cmdline, comm, cgroup and
// the exe link; all but cgroup are chosen by the process's owner), as a fake
// /proc tree in a temporary directory, plus the pure helpers on the same
// bytes. Input: five parts separated by "\n--\n": exe target, comm, cmdline,
// cgroup, maps.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "loopstall/procinfo.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<std::string_view> split_parts(std::string_view in) {
  constexpr std::string_view kSep = "\n--\n";
  std::vector<std::string_view> out;
  while (out.size() < 4) {
    const auto pos = in.find(kSep);
    if (pos == std::string_view::npos) break;
    out.push_back(in.substr(0, pos));
    in.remove_prefix(pos + kSep.size());
  }
  out.push_back(in);
  out.resize(5);
  return out;
}

void write(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// One fake /proc per fuzzing process (tmpfs when there is one). libFuzzer
// mostly leaves with _Exit, past atexit: trees of processes that are gone are
// also removed at the next start.
const fs::path& fake_proc() {
  // Never destroyed: the atexit handler below runs after static destructors.
  static const fs::path& root = *new fs::path([] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const std::string prefix = "loopstall-fuzz-proc-";
    std::error_code ec;
    std::vector<fs::path> stale;  // removed after the listing, which must not change under it
    for (const auto& e : fs::directory_iterator(base, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) != 0) continue;
      const pid_t owner = static_cast<pid_t>(std::atoi(name.c_str() + prefix.size()));
      if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) stale.push_back(e.path());
    }
    for (const auto& p : stale) fs::remove_all(p, ec);
    fs::path r = base / (prefix + std::to_string(::getpid()));
    fs::create_directories(r / "4242");
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(fake_proc(), ignored);
    });
    return r;
  }());
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = split_parts(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string_view exe = parts[0], comm = parts[1], cmdline = parts[2], cgroup = parts[3], maps = parts[4];

  // The pure helpers straight on the bytes.
  (void)loopstall::python_version_from_path(exe);
  (void)loopstall::strip_deleted(exe);
  (void)loopstall::service_from_cgroup(cgroup);

  const fs::path dir = fake_proc() / "4242";
  write(dir / "comm", comm);
  write(dir / "cmdline", cmdline);
  write(dir / "cgroup", cgroup);
  write(dir / "maps", maps);
  std::error_code ec;
  fs::remove(dir / "exe", ec);
  // A symlink target cannot hold NUL and is at most PATH_MAX, as readlink gives.
  const std::string target(exe.substr(0, std::min<std::size_t>(exe.find('\0'), 4000)));
  if (!target.empty()) fs::create_symlink(target, dir / "exe", ec);

  const auto info = loopstall::inspect_process(4242, fake_proc().string());
  if (!info) std::abort();  // maps is there: the process exists
  if (info->native_loop != loopstall::LoopKind::Epoll && !info->python) std::abort();
  if (info->cmdline.find('\0') != std::string::npos) std::abort();
  (void)loopstall::thread_comm(4242, 4242, fake_proc().string());
  return 0;
}
