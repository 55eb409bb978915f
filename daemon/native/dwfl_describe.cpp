// Naming the frames of a DwflProcess: module, offset in its file, symbol.
#include <cxxabi.h>

#include <cstdlib>
#include <string_view>

#include "dwfl_process.hpp"
#include "loopstall/procfs.hpp"

namespace loopstall::native {

namespace {

// "clock_nanosleep@GLIBC_2.2.5" → "clock_nanosleep"; C++ names demangled.
std::string clean_symbol(std::string_view s) {
  std::string name(s.substr(0, s.find('@', 1)));
  if (name.starts_with("_Z")) {
    int status = 0;
    char* d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
    if (d != nullptr) {
      name = d;
      std::free(d);
    }
  }
  return name;
}

}  // namespace

const SymbolTable* DwflProcess::symbols_of(Dwfl_Module* mod, Elf* elf, ElfSymbolizer& symbolizer) {
  void** userdata = nullptr;
  dwfl_module_info(mod, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  auto* rec = userdata != nullptr ? static_cast<ModuleRecord*>(*userdata) : nullptr;
  if (rec == nullptr) return nullptr;
  if (!rec->symbols_loaded) {
    rec->symbols_loaded = true;
    rec->symbols = symbolizer.table(elf, read_build_id(elf).value_or(""), uses_debuginfo());
  }
  return rec->symbols.get();
}

std::optional<std::uint64_t> DwflProcess::file_offset(const RawFrame& f) const {
  const std::uint64_t pc = f.activation ? f.pc : f.pc - 1;  // as describe() names it
  const Mapping* m = find_mapping(maps_, pc);
  if (m == nullptr || !m->file_backed() || m->deleted()) return std::nullopt;
  return pc - m->start + m->offset;
}

NativeFrame DwflProcess::describe(const RawFrame& f, ElfSymbolizer& symbolizer) {
  // A return address may be the first byte after the caller's function.
  const std::uint64_t pc = f.activation ? f.pc : f.pc - 1;
  NativeFrame out;
  if (Dwfl_Module* mod = dwfl_addrmodule(dwfl_, pc)) {
    const char* name = dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    out.module = name != nullptr ? name : "";
    Dwarf_Addr bias = 0;
    if (Elf* elf = dwfl_module_getelf(mod, &bias)) {
      out.offset = pc - bias;
      if (const SymbolTable* t = symbols_of(mod, elf, symbolizer)) {
        if (const auto s = t->lookup(out.offset)) out.symbol = clean_symbol(*s);
      }
      return out;
    }
  }
  // No ELF through the Dwfl: read the mapped file directly.
  const Mapping* m = find_mapping(maps_, pc);
  if (m == nullptr || !m->file_backed()) {
    if (out.module.empty() && m != nullptr) out.module = m->path;
    out.offset = pc;
    return out;
  }
  out.module = m->path;
  const std::uint64_t file_offset = pc - m->start + m->offset;
  out.offset = file_offset;
  for (const std::string& path : mode_.live
                                     ? target_file_paths(static_cast<std::uint32_t>(pid_), m->path, m->start, m->end)
                                     : std::vector{m->file_path()}) {
    const auto vaddr = symbolizer.file_offset_to_vaddr(path, file_offset);
    if (!vaddr) continue;
    out.offset = *vaddr;
    if (auto s = symbolizer.symbolize(path, *vaddr)) out.symbol = clean_symbol(*s);
    break;
  }
  return out;
}

}  // namespace loopstall::native
