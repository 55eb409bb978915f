// CPython's gc__start/gc__done USDT probes, attached per binary for every
// process that maps it (pid -1): the kernel then also maintains the probes'
// semaphores in every such process, and detaching (on exit, or when the
// Engine is destroyed) decrements them again, so interpreters go back to
// skipping the probe sites.
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine_impl.hpp"
#include "loopstall/printable.hpp"

namespace loopstall {
namespace {

// Whether the ELF file has SystemTap SDT notes at all (pyenv's builds do
// not): asking libbpf to attach to a file without them only logs noise.
bool has_sdt_notes(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool found = false;
  elf_version(EV_CURRENT);
  if (Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
    std::size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) == 0) {
      for (Elf_Scn* scn = nullptr; !found && (scn = elf_nextscn(elf, scn)) != nullptr;) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_NOTE) continue;
        const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
        found = name != nullptr && std::strcmp(name, ".note.stapsdt") == 0;
      }
    }
    elf_end(elf);
  }
  close(fd);
  return found;
}

}  // namespace

bool Engine::attach_gc_probes(const std::string& binary) {
  // Once per file (device and inode): the same interpreter reached through
  // several processes' /proc/PID/root must not be probed twice.
  struct stat st {};
  if (stat(binary.c_str(), &st) != 0) return false;
  const std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  if (!impl_->usdt_tried.insert(key).second) return false;
  if (!has_sdt_notes(binary)) return false;

  auto* s = impl_->skel;
  bpf_link* start = bpf_program__attach_usdt(s->progs.gc_start, -1, binary.c_str(), "python", "gc__start", nullptr);
  if (!start) {
    // Notes but no gc probes (another provider's binary) is not worth a word.
    if (errno != ENOENT)
      std::fprintf(stderr, "loopstall: warning: GC probes of %s not attached: %s\n", printable(binary).c_str(),
                   std::strerror(errno));
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
