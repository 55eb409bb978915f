// Finding a live CPython's _PyRuntime: which mapped file defines it (the
// executable for static builds, libpython3.X.so for shared ones), where that
// file is loaded (load bias from PT_LOAD headers vs. /proc/PID/maps) and which
// version it is.
#pragma once

#include <libelf.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/process_memory.hpp"
#include "loopstall/python/py_objects.hpp"

namespace loopstall::python {

struct LoadSegment {
  std::uint64_t vaddr = 0;
  std::uint64_t offset = 0;
  std::uint64_t filesz = 0;
};

// Runtime address minus link-time address for one file, from its PT_LOAD
// segments and its mappings: a mapping at `start` of file offset `offset`
// inside a segment means bias = start - offset - (p_vaddr - p_offset). 0 for a
// non-PIE executable (ET_EXEC).
std::optional<std::uint64_t> load_bias(const std::vector<LoadSegment>& loads,
                                       const std::vector<native::Mapping>& file_maps, bool et_exec);

struct ElfSymbols {
  bool et_exec = false;
  std::vector<LoadSegment> loads;
  std::map<std::string, std::uint64_t, std::less<>> symbols;  // link-time values of the defined ones asked for
};

// The PT_LOAD headers and the wanted symbols from .dynsym and .symtab (libelf),
// of the file at path (opened with native::ElfFile: regular files only).
std::optional<ElfSymbols> read_elf_symbols(const std::string& path, const std::vector<std::string_view>& wanted);
// The same from an ELF libelf has open (nullptr: nullopt), e.g. from memory.
std::optional<ElfSymbols> read_elf_symbols(Elf* elf, const std::vector<std::string_view>& wanted);

struct PyRuntimeInfo {
  std::uint64_t runtime = 0;  // &_PyRuntime in the target
  int major = 0;
  int minor = 0;
  std::uint64_t py_version_hex = 0;          // Py_Version (3.11+), 0 if not exported
  PyTypeAddrs types;                         // PyCode_Type, PyUnicode_Type, PyBytes_Type if exported
  std::string binary;                        // the file defining _PyRuntime
  std::uint64_t pthread_tid_descriptor = 0;  // &_thread_db_pthread_tid in libc, 0 if not found
};

std::optional<PyRuntimeInfo> locate_runtime(pid_t pid, const Memory& mem);

}  // namespace loopstall::python
