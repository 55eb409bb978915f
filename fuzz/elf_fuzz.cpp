// ELF files the daemon opens because a process maps them (a local user can
// map any file they wrote): every reader of ours over the same bytes — the
// runtime locator's symbols and PT_LOADs, the symbolizer's tables and
// build-id, the .note.stapsdt reader that finds the GC probes to attach.
// libelf does the parsing; the arithmetic on what it returns is ours. The
// bytes are opened with elf_memory. The path readers only open the file
// (native::ElfFile: regular files, never blocking) and hand its Elf to the
// same functions; opening a file per input took three quarters of the run
// time, so one input in sixteen (by its size) also goes through them, as a
// memfd, and must give the same answers.
#include <gelf.h>
#include <libelf.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "input_file.hpp"
#include "loopstall/native/sdt_notes.hpp"
#include "loopstall/native/symbolizer.hpp"
#include "loopstall/python/runtime_locator.hpp"

namespace native = loopstall::native;
namespace python = loopstall::python;

// What the runtime locator asks for.
const std::vector<std::string_view> kWanted = {"_PyRuntime", "Py_Version", "PyCode_Type", "_thread_db_pthread_tid"};

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  elf_version(EV_CURRENT);
  // elf_memory wants writable memory: a copy, in a buffer kept across inputs.
  static std::vector<char> image;
  image.resize(size);
  if (size) std::memcpy(image.data(), data, size);
  Elf* elf = elf_memory(image.data(), size);
  if (!elf) return 0;
  if (elf_kind(elf) != ELF_K_ELF) {
    if (python::read_elf_symbols(elf, {"_PyRuntime"})) std::abort();
    elf_end(elf);
    return 0;
  }

  std::vector<std::uint64_t> probes = {0, 1, 0x1000, ~0ull};
  const auto syms = python::read_elf_symbols(elf, kWanted);
  if (syms) {
    // The locator's next step: the load bias against a plausible mapping.
    native::Mapping m;
    m.start = 0x7f0000000000;
    m.end = 0x7f0000100000;
    m.readable = m.executable = true;
    m.inode = 1;
    m.path = "/usr/lib/libpython3.11.so.1.0";
    (void)python::load_bias(syms->loads, {m}, syms->et_exec);
    for (const auto& [name, value] : syms->symbols) probes.push_back(value), probes.push_back(value + 1);
    for (const auto& l : syms->loads) probes.push_back(l.vaddr), probes.push_back(l.vaddr + l.filesz);
  }
  const auto id = native::read_build_id(elf);
  const native::SdtNotes notes = native::read_sdt_notes(elf);
  if ((notes.gc_start || notes.gc_done) && !notes.any) std::abort();
  // What symbolize() and file_offset_to_vaddr() ask of the table they build.
  native::ElfSymbolizer symbolizer(4);
  const auto table = symbolizer.table(elf, id.value_or(""), true);
  if (table) {
    for (const std::uint64_t a : probes) {
      (void)table->lookup(a);
      (void)table->file_offset_to_vaddr(a);
    }
  }
  if (size % 16 == 0) {
    const std::string& path = fuzz_input_file(data, size);
    const auto by_path = python::read_elf_symbols(path, kWanted);
    if (by_path.has_value() != syms.has_value() || (syms && by_path->symbols != syms->symbols)) std::abort();
    if (native::read_sdt_notes(path).any != notes.any || native::read_build_id(path) != id) std::abort();
    // A fresh symbolizer builds the path's table from the file (without a
    // debug file, unlike table() above).
    native::ElfSymbolizer by_file(4);
    const auto plain = native::SymbolTable::build(elf);
    for (const std::uint64_t a : {probes.back(), std::uint64_t{0x1000}}) {
      if (by_file.symbolize(path, a) != (plain ? plain->lookup(a) : std::nullopt)) std::abort();
      if (by_file.file_offset_to_vaddr(path, a) != (plain ? plain->file_offset_to_vaddr(a) : std::nullopt))
        std::abort();
    }
  }
  elf_end(elf);
  return 0;
}
