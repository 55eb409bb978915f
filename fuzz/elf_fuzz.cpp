// ELF files the daemon opens because a process maps them (a local user can
// map any file they wrote): every reader of ours over the same bytes —
// the runtime locator's symbols and PT_LOADs, the symbolizer's tables and
// build-id, the .note.stapsdt reader that finds the GC probes to attach. libelf
// does the parsing; the arithmetic on what it returns is ours. Each input is
// opened by path twice (the locator, the symbolizer) and parsed once in memory.
#include <gelf.h>
#include <libelf.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "input_file.hpp"
#include "loopstall/native/sdt_notes.hpp"
#include "loopstall/native/symbolizer.hpp"
#include "loopstall/python/runtime_locator.hpp"

namespace native = loopstall::native;
namespace python = loopstall::python;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = fuzz_input_file(data, size);

  const auto syms =
      python::read_elf_symbols(path, {"_PyRuntime", "Py_Version", "PyCode_Type", "_thread_db_pthread_tid"});
  if (syms) {
    // The locator's next step: the load bias against a plausible mapping.
    native::Mapping m;
    m.start = 0x7f0000000000;
    m.end = 0x7f0000100000;
    m.readable = m.executable = true;
    m.inode = 1;
    m.path = path;
    (void)python::load_bias(syms->loads, {m}, syms->et_exec);
  }
  // The path readers open the file (regular files only, never blocking) and
  // hand libelf's Elf to the same functions as the in-memory Elf below: the
  // symbolizer builds its table through the path once and then answers from
  // its cache, so two addresses cover the path; every probe goes to the table.
  native::ElfSymbolizer symbolizer(4);
  std::vector<std::uint64_t> probes = {0, 1, 0x1000, ~0ull};
  if (syms) {
    for (const auto& [name, value] : syms->symbols) probes.push_back(value), probes.push_back(value + 1);
    for (const auto& l : syms->loads) probes.push_back(l.vaddr), probes.push_back(l.vaddr + l.filesz);
  }
  for (const std::uint64_t a : {probes.back(), std::uint64_t{0x1000}}) {
    (void)symbolizer.symbolize(path, a);
    (void)symbolizer.file_offset_to_vaddr(path, a);
  }

  // The bytes as an already open Elf (a Dwfl module's, or what the path
  // readers above and read_sdt_notes(path)/read_build_id(path) get from libelf).
  elf_version(EV_CURRENT);
  std::vector<char> copy(data, data + size);  // elf_memory wants writable memory
  if (Elf* elf = elf_memory(copy.data(), copy.size())) {
    if (elf_kind(elf) == ELF_K_ELF) {
      const auto id = native::read_build_id(elf);
      const native::SdtNotes notes = native::read_sdt_notes(elf);
      if ((notes.gc_start || notes.gc_done) && !notes.any) std::abort();
      const auto table = symbolizer.table(elf, id.value_or(""), true);
      if (table) {
        for (const std::uint64_t a : probes) {
          (void)table->lookup(a);
          (void)table->file_offset_to_vaddr(a);
        }
      }
    }
    elf_end(elf);
  }
  return 0;
}
