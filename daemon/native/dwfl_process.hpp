// One process's address space as libdwfl sees it: a Dwfl with one module per
// mapped ELF file and thread callbacks that serve registers and memory from a
// StackSnapshot. Internal to the unwinder.
#pragma once

#include <elfutils/libdwfl.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loopstall/native/proc_maps.hpp"
#include "loopstall/native/snapshot.hpp"
#include "loopstall/native/symbolizer.hpp"
#include "loopstall/stall.hpp"

namespace loopstall::native {

struct RawFrame {
  std::uint64_t pc = 0;
  bool activation = false;
  bool recovered = false;
};

// x86-64 DWARF register numbers.
namespace dwarf_reg {
inline constexpr int kRbx = 3;
inline constexpr int kRbp = 6;
inline constexpr int kRsp = 7;
inline constexpr int kRip = 16;  // the return address column
}  // namespace dwarf_reg

// Registers by DWARF number (x86-64: 0..16).
struct DwarfRegs {
  static constexpr int kCount = 17;
  std::uint64_t value[kCount] = {};
  std::uint32_t known = 0;  // bit per register
  bool has(int r) const { return (known >> r) & 1u; }
  void set(int r, std::uint64_t v) {
    value[r] = v;
    known |= 1u << r;
  }
};

class DwflProcess {
 public:
  struct Mode {
    // pid is running: modules are opened through /proc/PID/map_files (exactly
    // the mapped file, even deleted or in another mount namespace).
    bool live = true;
    // Memory the snapshot and the ELF files do not hold may be read from the
    // live process.
    bool read_live_memory = true;
    // A recording: the files at the mapped paths are trusted without
    // comparing inodes (the caller checks build-ids).
    bool recorded = false;
    // Symbols and CFI from separate debug files (Debian's -dbgsym packages,
    // by build-id) when installed.
    bool use_debug_files = true;
  };
  // nullptr when no module could be attached (no code mapped: a kernel
  // thread, an exited process).
  static std::unique_ptr<DwflProcess> create(pid_t pid, std::vector<Mapping> maps, Mode mode);
  ~DwflProcess();
  DwflProcess(const DwflProcess&) = delete;
  DwflProcess& operator=(const DwflProcess&) = delete;

  std::vector<RawFrame> unwind(const StackSnapshot& snap, std::size_t max_frames);
  NativeFrame describe(const RawFrame& f, ElfSymbolizer& symbolizer);
  // The frame's address as an offset in its mapped file, through the
  // mapping that holds it; nullopt unless that is a regular file still there.
  std::optional<std::uint64_t> file_offset(const RawFrame& f) const;

  // The latest maps (anonymous mappings change all the time; the code
  // modules, which the Dwfl is built from, did not).
  void update_maps(std::vector<Mapping> maps) { maps_ = std::move(maps); }
  // false once the process exited: stop touching /proc/PID.
  void set_live(bool live) { mode_.live = live; }
  std::size_t stack_bytes_used() const { return stack_used_; }

  // libdwfl callbacks (C linkage trampolines call these).
  struct ModuleRecord;
  int find_elf(ModuleRecord& rec, char** file_name, Elf** elfp);
  bool read_word(std::uint64_t addr, std::uint64_t* out);
  bool set_initial_registers(Dwfl_Thread* thread);
  pid_t pid() const { return pid_; }
  bool uses_debuginfo() const { return mode_.use_debug_files; }

 private:
  DwflProcess(pid_t pid, std::vector<Mapping> maps, Mode mode);
  bool read_bytes(std::uint64_t addr, void* out, std::size_t n, bool from_stack);
  bool read_from_elf(std::uint64_t addr, void* out, std::size_t n);
  bool looks_like_return_address(std::uint64_t addr);
  // A value for the register the stuck frame's CFA is based on, when that
  // register was never captured.
  bool recover_cfa_register(const RawFrame& stuck, DwarfRegs& regs);
  int open_module_file(const ModuleRecord& rec);
  // The module's symbols, shared through the symbolizer by build-id.
  const SymbolTable* symbols_of(Dwfl_Module* mod, Elf* elf, ElfSymbolizer& symbolizer);

  pid_t pid_;
  std::vector<Mapping> maps_;
  Mode mode_;
  Dwfl* dwfl_ = nullptr;
  std::vector<std::unique_ptr<ModuleRecord>> modules_;

  // State of the unwind in progress.
  const StackSnapshot* snap_ = nullptr;
  DwarfRegs initial_;
  std::size_t stack_used_ = 0;
};

// What libdwfl keeps for one module (its userdata).
struct DwflProcess::ModuleRecord {
  DwflProcess* owner = nullptr;
  ModuleSpan span;
  Mapping first;            // the span's first mapping: its map_files entry opens the file
  std::vector<char> image;  // the vDSO's ELF image, copied from the process
  std::shared_ptr<const SymbolTable> symbols;
  bool symbols_loaded = false;
};

}  // namespace loopstall::native
