// CPython's USDT probes (gc__start, gc__done of the "python" provider) as
// written in an ELF file's .note.stapsdt: what attaching them needs. Notes
// come from files that any local user can write and run: every length is
// checked against the note's descriptor.
#pragma once

#include <libelf.h>

#include <cstdint>
#include <optional>
#include <string>

namespace loopstall::native {

// One SDT probe of a file, as file offsets (what uprobes take).
struct SdtProbe {
  std::uint64_t offset = 0;
  std::uint64_t semaphore_offset = 0;  // 0: no semaphore
};

struct SdtNotes {
  bool any = false;  // the file has .note.stapsdt at all
  std::optional<SdtProbe> gc_start, gc_done;
};

// Regular files only, opened without blocking (the path may name a FIFO by
// now); nothing found when the file is not ELF.
SdtNotes read_sdt_notes(const std::string& path);
SdtNotes read_sdt_notes(Elf* elf);

}  // namespace loopstall::native
