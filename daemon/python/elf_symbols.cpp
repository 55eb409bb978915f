// Symbol and program-header lookup in ELF files with libelf.
#include <gelf.h>

#include <algorithm>

#include "loopstall/native/elf_file.hpp"
#include "loopstall/python/runtime_locator.hpp"

namespace loopstall::python {

std::optional<ElfSymbols> read_elf_symbols(const std::string& path, const std::vector<std::string_view>& wanted) {
  const native::ElfFile file(path);
  return read_elf_symbols(file.get(), wanted);
}

std::optional<ElfSymbols> read_elf_symbols(Elf* elf, const std::vector<std::string_view>& wanted) {
  std::optional<ElfSymbols> result;
  GElf_Ehdr ehdr;
  if (elf && gelf_getehdr(elf, &ehdr)) {
    ElfSymbols out;
    out.et_exec = ehdr.e_type == ET_EXEC;
    std::size_t nphdr = 0;
    if (elf_getphdrnum(elf, &nphdr) == 0) {
      for (std::size_t i = 0; i < nphdr && i < 256; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD) {
          out.loads.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz});
        }
      }
    }
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || sh.sh_entsize == 0) {
        continue;
      }
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      const std::size_t count = sh.sh_size / sh.sh_entsize;
      for (std::size_t i = 0; i < count; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
        const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (!name) continue;
        const std::string_view n(name);
        if (std::find(wanted.begin(), wanted.end(), n) != wanted.end()) out.symbols.emplace(n, sym.st_value);
      }
    }
    result = std::move(out);
  }
  return result;
}

}  // namespace loopstall::python
