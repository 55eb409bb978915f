// What inspect_process reads from /proc/PID (maps, cmdline, comm, cgroup and
// the exe link; all but cgroup are chosen by the process's owner) through its
// judgement half, classify_process, plus the pure helpers on the same bytes
// and the service name made of the result. Writing a fake /proc per input
// took most of the run time: one input in sixteen (by its size) also goes
// through the files and inspect_process, which must agree with
// classify_process. Input: five parts separated by "\n--\n": exe target,
// comm, cmdline (NUL-separated, as the kernel gives it), cgroup, maps.
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

#include "loopstall/limits.hpp"
#include "loopstall/procinfo.hpp"
#include "loopstall/service_name.hpp"

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

// The texts as files of a fake /proc/4242, read back by inspect_process: what
// classify_process makes of the same texts cut as the readers cut them.
void check_readers_agree(const loopstall::ProcTexts& t, std::string_view raw_cmdline) {
  const fs::path dir = fake_proc() / "4242";
  write(dir / "comm", *t.comm);
  write(dir / "cmdline", raw_cmdline);
  write(dir / "cgroup", *t.cgroup);
  write(dir / "maps", *t.maps);
  write(dir / "environ", raw_cmdline);  // NUL-separated bytes too, for the naming rules
  std::error_code ec;
  fs::remove(dir / "exe", ec);
  loopstall::ProcTexts cut = t;
  std::error_code link_error;
  if (!t.exe.empty()) fs::create_symlink(t.exe, dir / "exe", link_error);
  if (link_error) cut.exe.clear();
  cut.comm = t.comm->substr(0, 64);
  cut.cmdline = loopstall::join_cmdline(std::string(raw_cmdline.substr(0, loopstall::kMaxCmdlineBytes)));
  cut.cgroup = t.cgroup->substr(0, loopstall::kMaxCgroupBytes);
  const auto read = loopstall::inspect_process(4242, fake_proc().string());
  const auto parsed = loopstall::classify_process(4242, cut);
  if (!read || !parsed) std::abort();  // maps is there: the process exists
  // (Not `loopstall`: an exe link to /proc/self/exe is this fuzzer's binary.)
  if (read->exe != parsed->exe || read->comm != parsed->comm || read->cmdline != parsed->cmdline ||
      read->cgroup != parsed->cgroup || read->unit != parsed->unit || read->python != parsed->python ||
      read->python_version != parsed->python_version || read->libpython != parsed->libpython ||
      read->native_loop != parsed->native_loop || read->loop_module != parsed->loop_module ||
      read->limited != parsed->limited)
    std::abort();
  (void)loopstall::thread_comm(4242, 4242, fake_proc().string());
  // The service name with the process's environ (runtime files looked up under the fake tree).
  loopstall::ServiceNaming naming = loopstall::ServiceNaming::defaults();
  naming.host_root = fake_proc().string();
  if (loopstall::service_name(*read, naming, fake_proc().string()).size() > loopstall::kMaxServiceNameBytes)
    std::abort();
}

// Files the service naming rules would read (a parent's stat and cmdline,
// environ, container runtime files) are not there: they come from the real
// /proc, not from the input.
constexpr const char* kNowhere = "/nonexistent/loopstall-fuzz";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = split_parts(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string_view exe = parts[0], comm = parts[1], cmdline = parts[2], cgroup = parts[3], maps = parts[4];

  // The pure helpers straight on the bytes.
  (void)loopstall::python_version_from_path(exe);
  (void)loopstall::strip_deleted(exe);
  (void)loopstall::systemd_unit_from_cgroup(cgroup);
  (void)loopstall::container_id_from_cgroup(cgroup);
  (void)loopstall::pod_uid_from_cgroup(cgroup);
  (void)loopstall::script_name(cmdline);
  (void)loopstall::is_prefork_server(cmdline);
  (void)loopstall::environ_value(cmdline, "OTEL_SERVICE_NAME");

  loopstall::ProcTexts t;
  // A symlink target cannot hold NUL and is at most PATH_MAX, as readlink gives.
  t.exe = std::string(exe.substr(0, std::min<std::size_t>(exe.find('\0'), 4000)));
  t.comm = std::string(comm);
  t.cmdline = loopstall::join_cmdline(std::string(cmdline));
  t.cgroup = std::string(cgroup);
  t.maps = std::string(maps);
  // The last byte's high bits (clear in text) pick what a restricted reader
  // could not read: maps without CAP_PERFMON, exe without CAP_SYS_PTRACE.
  const std::uint8_t unreadable = size ? data[size - 1] : 0;
  if (unreadable & 0x80) t.maps.reset();
  if (unreadable & 0x40) t.comm.reset();
  if (unreadable & 0x20) t.exe.clear();
  const auto info = loopstall::classify_process(4242, t);
  if (!info) {
    if (t.maps || t.comm) std::abort();  // readable: the process exists
    return 0;
  }
  if (info->native_loop != loopstall::LoopKind::Epoll && !info->python) std::abort();
  if (info->cmdline.find('\0') != std::string::npos) std::abort();
  if (!t.maps && !info->limited) std::abort();
  if (size % 16 == 0 && t.maps && t.comm) check_readers_agree(t, cmdline);
  // The service name from the same hostile texts.
  loopstall::ServiceNaming naming = loopstall::ServiceNaming::defaults();
  naming.host_root = kNowhere;
  if (loopstall::service_name(*info, naming, kNowhere).size() > loopstall::kMaxServiceNameBytes) std::abort();
  return 0;
}
