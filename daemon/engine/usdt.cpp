// CPython's gc__start/gc__done USDT probes, attached per binary for every
// process that maps it (pid -1): the kernel then also maintains the probes'
// semaphores in every such process, and detaching (on exit, or when the
// Engine is destroyed) decrements them again, so interpreters go back to
// skipping the probe sites.
//
// Kernels >= 6.6 get uprobe_multi links (bpf(BPF_LINK_CREATE)), which need
// only CAP_BPF + CAP_PERFMON: a uprobe perf event, libbpf's way on libbpf
// 1.1, is refused without CAP_SYS_ADMIN (EACCES, measured on 6.18), so the
// systemd unit's capabilities never had GC time. Older kernels keep libbpf's
// attach.
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "engine_impl.hpp"
#include "loopstall/native/elf_file.hpp"
#include "loopstall/native/sdt_notes.hpp"
#include "loopstall/printable.hpp"

namespace loopstall {
namespace {

constexpr unsigned kAttachUprobeMulti = 48;  // BPF_TRACE_UPROBE_MULTI (Linux 6.6)

bool kernel_at_least(int major, int minor) {
  utsname u{};
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

// bpf(BPF_LINK_CREATE) for one uprobe_multi probe: the uapi headers of
// Debian 12 (Linux 6.1) predate the attr's uprobe_multi member.
int uprobe_multi_link(int prog_fd, const std::string& path, const native::SdtProbe& p) {
  struct {
    std::uint32_t prog_fd, target_fd, attach_type, flags;
    std::uint64_t path, offsets, ref_ctr_offsets, cookies;
    std::uint32_t cnt, multi_flags, pid, pad;
  } attr{};
  const std::uint64_t offset = p.offset, ref_ctr = p.semaphore_offset;
  attr.prog_fd = static_cast<std::uint32_t>(prog_fd);
  attr.attach_type = kAttachUprobeMulti;
  attr.path = reinterpret_cast<std::uintptr_t>(path.c_str());
  attr.offsets = reinterpret_cast<std::uintptr_t>(&offset);
  attr.ref_ctr_offsets = reinterpret_cast<std::uintptr_t>(&ref_ctr);
  attr.cnt = 1;
  return static_cast<int>(syscall(SYS_bpf, 28 /* BPF_LINK_CREATE */, &attr, sizeof attr));
}

}  // namespace

void prepare_gc_probes(Engine::Impl& impl) {
  if (!kernel_at_least(6, 6)) return;
  for (bpf_program* p : {impl.skel->progs.gc_start, impl.skel->progs.gc_done})
    bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(kAttachUprobeMulti));
  impl.usdt_multi = true;
}

bool Engine::attach_gc_probes(const std::string& binary) {
  // Opened once (regular files only, never blocking on a FIFO): the notes are
  // read from this descriptor and the kernel attaches to it through
  // /proc/self/fd/N, so the process's owner cannot swap the file at the path
  // between our check and the kernel's own lookup.
  const native::ElfFile file(binary);
  if (!file.valid()) return false;
  // Once per file (device and inode): the same interpreter reached through
  // several processes' /proc/PID/root must not be probed twice.
  const std::string key = std::to_string(file.stat().st_dev) + ":" + std::to_string(file.stat().st_ino);
  if (!impl_->usdt_tried.insert(key).second) return false;
  const native::SdtNotes notes = native::read_sdt_notes(file.get());
  if (!notes.any) return false;  // pyenv's builds: asking would only log noise
  const std::string opened = "/proc/self/fd/" + std::to_string(file.fd());

  auto* s = impl_->skel;
  if (impl_->usdt_multi) {
    if (!notes.gc_start || !notes.gc_done) return false;  // another provider's notes
    const int start = uprobe_multi_link(bpf_program__fd(s->progs.gc_start), opened, *notes.gc_start);
    const int done = start < 0 ? -1 : uprobe_multi_link(bpf_program__fd(s->progs.gc_done), opened, *notes.gc_done);
    if (done < 0) {
      std::fprintf(stderr, "loopstall: warning: GC probes of %s not attached: %s\n", binary.c_str(),
                   std::strerror(errno));
      if (start >= 0) close(start);
      return false;
    }
    impl_->usdt_link_fds.push_back(start);
    impl_->usdt_link_fds.push_back(done);
    return true;
  }
  bpf_link* start = bpf_program__attach_usdt(s->progs.gc_start, -1, opened.c_str(), "python", "gc__start", nullptr);
  if (!start) {
    // Notes but no gc probes (another provider's binary) is not worth a word.
    if (errno != ENOENT)
      std::fprintf(stderr, "loopstall: warning: GC probes of %s not attached: %s%s\n", printable(binary).c_str(),
                   std::strerror(errno), errno == EACCES ? " (uprobe perf events need CAP_SYS_ADMIN)" : "");
    return false;
  }
  bpf_link* done = bpf_program__attach_usdt(s->progs.gc_done, -1, opened.c_str(), "python", "gc__done", nullptr);
  if (!done) {
    std::fprintf(stderr, "loopstall: warning: %s has gc__start but gc__done did not attach: %s\n",
                 printable(binary).c_str(), std::strerror(errno));
    bpf_link__destroy(start);
    return false;
  }
  impl_->usdt_links.push_back(start);
  impl_->usdt_links.push_back(done);
  return true;
}

}  // namespace loopstall
