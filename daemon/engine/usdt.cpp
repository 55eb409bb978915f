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
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "engine_impl.hpp"
#include "loopstall/printable.hpp"

namespace loopstall {
namespace {

constexpr unsigned kAttachUprobeMulti = 48;  // BPF_TRACE_UPROBE_MULTI (Linux 6.6)

// One SDT probe of a file, as file offsets (what uprobes take).
struct SdtProbe {
  std::uint64_t offset = 0;
  std::uint64_t semaphore_offset = 0;  // 0: no semaphore
};

struct SdtNotes {
  bool any = false;  // the file has .note.stapsdt at all
  std::optional<SdtProbe> gc_start, gc_done;
};

// File offset of a virtual address, through the PT_LOAD segments.
std::optional<std::uint64_t> file_offset(Elf* elf, std::uint64_t vaddr) {
  std::size_t n = 0;
  if (elf_getphdrnum(elf, &n) != 0) return std::nullopt;
  for (std::size_t i = 0; i < n && i < 256; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
    if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) return vaddr - ph.p_vaddr + ph.p_offset;
  }
  return std::nullopt;
}

// The python provider's gc probes of one ELF file. Notes are outside data:
// every length is checked against the note's descriptor.
SdtNotes read_sdt_notes(const std::string& path) {
  SdtNotes out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  std::size_t shstrndx = 0;
  if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0) {
    // Prelinking moves .stapsdt.base; notes hold its link-time address.
    std::optional<std::uint64_t> base_now;
    for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
      GElf_Shdr sh;
      const char* name = gelf_getshdr(scn, &sh) ? elf_strptr(elf, shstrndx, sh.sh_name) : nullptr;
      if (name && std::strcmp(name, ".stapsdt.base") == 0) base_now = sh.sh_addr;
    }
    for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE) continue;
      const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
      if (!name || std::strcmp(name, ".note.stapsdt") != 0) continue;
      out.any = true;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data || !data->d_buf) continue;
      GElf_Nhdr nh;
      std::size_t pos = 0, name_off = 0, desc_off = 0;
      while ((pos = gelf_getnote(data, pos, &nh, &name_off, &desc_off)) > 0) {
        const char* d = static_cast<const char*>(data->d_buf) + desc_off;
        if (nh.n_type != 3 || nh.n_descsz < 3 * 8 + 2 || desc_off + nh.n_descsz > data->d_size) continue;
        std::uint64_t pc, note_base, sem;
        std::memcpy(&pc, d, 8);
        std::memcpy(&note_base, d + 8, 8);
        std::memcpy(&sem, d + 16, 8);
        const std::string_view strs(d + 24, nh.n_descsz - 24);
        const auto nul = strs.find('\0');
        if (nul == std::string_view::npos || strs.substr(0, nul) != "python") continue;
        const std::string_view rest = strs.substr(nul + 1);
        const std::string_view probe = rest.substr(0, rest.find('\0'));
        auto* slot = probe == "gc__start" ? &out.gc_start : probe == "gc__done" ? &out.gc_done : nullptr;
        if (!slot) continue;
        if (base_now && note_base) pc += *base_now - note_base, sem = sem ? sem + *base_now - note_base : 0;
        const auto off = file_offset(elf, pc);
        const auto sem_off = sem ? file_offset(elf, sem) : std::optional<std::uint64_t>(0);
        if (off && sem_off) *slot = SdtProbe{*off, *sem_off};
      }
    }
  }
  if (elf) elf_end(elf);
  close(fd);
  return out;
}

bool kernel_at_least(int major, int minor) {
  utsname u{};
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

// bpf(BPF_LINK_CREATE) for one uprobe_multi probe: the uapi headers of
// Debian 12 (Linux 6.1) predate the attr's uprobe_multi member.
int uprobe_multi_link(int prog_fd, const std::string& path, const SdtProbe& p) {
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
  // Once per file (device and inode): the same interpreter reached through
  // several processes' /proc/PID/root must not be probed twice.
  struct stat st {};
  if (stat(binary.c_str(), &st) != 0) return false;
  const std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  if (!impl_->usdt_tried.insert(key).second) return false;
  const SdtNotes notes = read_sdt_notes(binary);
  if (!notes.any) return false;  // pyenv's builds: asking would only log noise

  auto* s = impl_->skel;
  if (impl_->usdt_multi) {
    if (!notes.gc_start || !notes.gc_done) return false;  // another provider's notes
    const int start = uprobe_multi_link(bpf_program__fd(s->progs.gc_start), binary, *notes.gc_start);
    const int done = start < 0 ? -1 : uprobe_multi_link(bpf_program__fd(s->progs.gc_done), binary, *notes.gc_done);
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
  bpf_link* start = bpf_program__attach_usdt(s->progs.gc_start, -1, binary.c_str(), "python", "gc__start", nullptr);
  if (!start) {
    // Notes but no gc probes (another provider's binary) is not worth a word.
    if (errno != ENOENT)
      std::fprintf(stderr, "loopstall: warning: GC probes of %s not attached: %s%s\n", printable(binary).c_str(),
                   std::strerror(errno), errno == EACCES ? " (uprobe perf events need CAP_SYS_ADMIN)" : "");
    return false;
  }
  bpf_link* done = bpf_program__attach_usdt(s->progs.gc_done, -1, binary.c_str(), "python", "gc__done", nullptr);
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
