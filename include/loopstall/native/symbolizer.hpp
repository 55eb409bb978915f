// Function symbols of ELF files read with libelf (.symtab, else .dynsym),
// sorted for binary search: libdwfl's own lookup scans every symbol, far too
// slow for a stack of 20 frames in libpython. Used for every frame the
// unwinder names, and to resolve an address in a module file directly. Not
// thread-safe.
#pragma once

#include <libelf.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace loopstall::native {

// The GNU build-id of an ELF file, as lowercase hex; nullopt when the file
// is not ELF or has none.
std::optional<std::string> read_build_id(const std::string& path);
std::optional<std::string> read_build_id(Elf* elf);

// Where Debian's -dbgsym packages put the separate debug file of a build.
std::string debug_file_path(const std::string& build_id);

class SymbolTable {
 public:
  // Functions of elf's .symtab; else of debug's (its separate debug file);
  // else of elf's .dynsym. Segments from elf.
  static std::shared_ptr<const SymbolTable> build(Elf* elf, Elf* debug = nullptr);

  // The function holding vaddr, an address in the file's own ELF address
  // space (what `addr2line -e file` takes).
  std::optional<std::string_view> lookup(std::uint64_t vaddr) const;
  // The ELF address of a file offset, through the PT_LOAD segment holding it.
  std::optional<std::uint64_t> file_offset_to_vaddr(std::uint64_t file_offset) const;
  std::size_t size() const { return syms_.size(); }

 private:
  struct Sym {
    std::uint64_t addr;
    std::uint64_t size;
    std::uint32_t name;  // offset in names_
    std::uint8_t rank;   // among aliases: global, weak, local (as libdwfl picks)
  };
  struct Load {
    std::uint64_t vaddr;
    std::uint64_t offset;
    std::uint64_t filesz;
  };
  bool add_symbols(Elf* elf, std::uint32_t section_type);

  std::vector<Sym> syms_;  // sorted by addr
  std::string names_;
  std::vector<Load> loads_;
};

class ElfSymbolizer {
 public:
  explicit ElfSymbolizer(std::size_t max_files = 64);

  // By path (the file is opened once per path, inode and mtime).
  std::optional<std::string> symbolize(const std::string& path, std::uint64_t vaddr);
  std::optional<std::uint64_t> file_offset_to_vaddr(const std::string& path, std::uint64_t file_offset);

  // The table of an ELF file that is already open (a Dwfl module's), shared
  // by every process that maps the same build. Separate debug files are
  // looked up by build-id when use_debug_file.
  std::shared_ptr<const SymbolTable> table(Elf* elf, const std::string& build_id, bool use_debug_file);

  std::size_t cached_files() const { return lru_.size(); }

 private:
  std::shared_ptr<const SymbolTable> table_for_path(const std::string& path);
  std::shared_ptr<const SymbolTable> find(const std::string& key);
  void insert(const std::string& key, std::shared_ptr<const SymbolTable> table);

  std::size_t max_files_;
  // Most recently used first; keyed by build-id (or by path identity for
  // files without one).
  std::list<std::pair<std::string, std::shared_ptr<const SymbolTable>>> lru_;
  std::unordered_map<std::string, decltype(lru_)::iterator> by_key_;
  std::unordered_map<std::string, std::string> path_keys_;  // path identity -> key
};

}  // namespace loopstall::native
