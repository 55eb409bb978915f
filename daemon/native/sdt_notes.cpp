#include "loopstall/native/sdt_notes.hpp"

#include <gelf.h>

#include <cstring>
#include <string_view>

#include "loopstall/native/elf_file.hpp"

namespace loopstall::native {
namespace {

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

}  // namespace

SdtNotes read_sdt_notes(const std::string& path) {
  const ElfFile file(path);  // never blocks on a FIFO where a deleted executable was
  return read_sdt_notes(file.get());
}

SdtNotes read_sdt_notes(Elf* elf) {
  SdtNotes out;
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
  return out;
}

}  // namespace loopstall::native
