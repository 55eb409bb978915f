#include "loopstall/native/symbolizer.hpp"

#include <elfutils/libdwelf.h>
#include <gelf.h>
#include <unistd.h>

#include <algorithm>

#include "loopstall/native/elf_file.hpp"

namespace loopstall::native {
namespace {

std::string hex(const void* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::optional<std::string> read_build_id(Elf* elf) {
  const void* id = nullptr;
  const ssize_t n = elf != nullptr ? dwelf_elf_gnu_build_id(elf, &id) : -1;
  if (n <= 0 || id == nullptr) return std::nullopt;
  return hex(id, static_cast<std::size_t>(n));
}

std::optional<std::string> read_build_id(const std::string& path) {
  const ElfFile f(path);
  return read_build_id(f.get());
}

std::string debug_file_path(const std::string& build_id) {
  if (build_id.size() < 3) return {};
  return "/usr/lib/debug/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
}

// --- SymbolTable ---------------------------------------------------------------

bool SymbolTable::add_symbols(Elf* elf, std::uint32_t section_type) {
  const std::size_t before = syms_.size();
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != section_type || shdr.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr) continue;
    const std::size_t count = shdr.sh_size / shdr.sh_entsize;
    for (std::size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      const int type = GELF_ST_TYPE(sym.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (name == nullptr || *name == '\0') continue;
      const int bind = GELF_ST_BIND(sym.st_info);
      const std::uint8_t rank = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
      syms_.push_back({sym.st_value, sym.st_size, static_cast<std::uint32_t>(names_.size()), rank});
      names_.append(name).push_back('\0');
    }
  }
  return syms_.size() > before;
}

std::shared_ptr<const SymbolTable> SymbolTable::build(Elf* elf, Elf* debug) {
  auto t = std::make_shared<SymbolTable>();
  std::size_t nph = 0;
  if (elf_getphdrnum(elf, &nph) == 0) {
    for (std::size_t i = 0; i < nph; ++i) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, static_cast<int>(i), &ph) != nullptr && ph.p_type == PT_LOAD) {
        t->loads_.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz});
      }
    }
  }
  // .symtab (full) beats .dynsym (exported only).
  if (!t->add_symbols(elf, SHT_SYMTAB) && (debug == nullptr || !t->add_symbols(debug, SHT_SYMTAB))) {
    t->add_symbols(elf, SHT_DYNSYM);
  }
  // By address; among aliases a sized one first (it bounds the lookup).
  std::stable_sort(t->syms_.begin(), t->syms_.end(), [](const Sym& a, const Sym& b) {
    if (a.addr != b.addr) return a.addr < b.addr;
    if ((a.size != 0) != (b.size != 0)) return a.size != 0;
    return a.rank < b.rank;
  });
  t->syms_.shrink_to_fit();
  t->names_.shrink_to_fit();
  return t;
}

std::optional<std::string_view> SymbolTable::lookup(std::uint64_t vaddr) const {
  auto it =
      std::upper_bound(syms_.begin(), syms_.end(), vaddr, [](std::uint64_t a, const Sym& s) { return a < s.addr; });
  if (it == syms_.begin()) return std::nullopt;
  const std::uint64_t start = std::prev(it)->addr;
  const auto first =
      std::lower_bound(syms_.begin(), it, start, [](const Sym& s, std::uint64_t a) { return s.addr < a; });
  // Sizeless symbols (hand-written assembly) extend to the next symbol.
  if (first->size != 0 && vaddr - first->addr >= first->size) return std::nullopt;
  return std::string_view(names_.c_str() + first->name);
}

std::optional<std::uint64_t> SymbolTable::file_offset_to_vaddr(std::uint64_t file_offset) const {
  for (const auto& l : loads_) {
    if (file_offset >= l.offset && file_offset - l.offset < l.filesz) return l.vaddr + (file_offset - l.offset);
  }
  return std::nullopt;
}

// --- ElfSymbolizer -------------------------------------------------------------

ElfSymbolizer::ElfSymbolizer(std::size_t max_files) : max_files_(std::max<std::size_t>(1, max_files)) {}

std::shared_ptr<const SymbolTable> ElfSymbolizer::find(const std::string& key) {
  const auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void ElfSymbolizer::insert(const std::string& key, std::shared_ptr<const SymbolTable> table) {
  lru_.emplace_front(key, std::move(table));
  by_key_[key] = lru_.begin();
  while (lru_.size() > max_files_) {
    by_key_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

std::shared_ptr<const SymbolTable> ElfSymbolizer::table(Elf* elf, const std::string& build_id, bool use_debug_file) {
  if (elf == nullptr) return nullptr;
  const std::string key = build_id.empty() ? std::string() : build_id + (use_debug_file ? "+debug" : "");
  if (!key.empty()) {
    if (auto t = find(key)) return t;
  }
  std::shared_ptr<const SymbolTable> t;
  if (use_debug_file && !build_id.empty()) {
    const ElfFile debug(debug_file_path(build_id));
    t = SymbolTable::build(elf, debug.get());
  } else {
    t = SymbolTable::build(elf);
  }
  // Without a build-id the caller keeps the only reference.
  if (!key.empty()) insert(key, t);
  return t;
}

std::shared_ptr<const SymbolTable> ElfSymbolizer::table_for_path(const std::string& path) {
  // Identified by what was opened, not by a second look at the path (which the file's owner may swap).
  const int fd = open_regular_file(path);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    if (fd >= 0) ::close(fd);
    return nullptr;
  }
  const std::string identity = path + '\0' + std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + ':' +
                               std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) + ':' +
                               std::to_string(st.st_size);
  if (const auto it = path_keys_.find(identity); it != path_keys_.end()) {
    if (auto t = find(it->second)) {
      ::close(fd);
      return t;
    }
  }
  const ElfFile h = ElfFile::adopt(fd);
  if (!h.valid()) return nullptr;
  // Files without a build-id are keyed by their identity.
  const std::string key = read_build_id(h.get()).value_or(identity);
  auto t = find(key);
  if (!t) {
    t = SymbolTable::build(h.get());
    insert(key, t);
  }
  if (path_keys_.size() >= 16 * max_files_) path_keys_.clear();
  path_keys_[identity] = key;
  return t;
}

std::optional<std::string> ElfSymbolizer::symbolize(const std::string& path, std::uint64_t vaddr) {
  const auto t = table_for_path(path);
  if (!t) return std::nullopt;
  const auto s = t->lookup(vaddr);
  return s ? std::optional<std::string>(*s) : std::nullopt;
}

std::optional<std::uint64_t> ElfSymbolizer::file_offset_to_vaddr(const std::string& path, std::uint64_t file_offset) {
  const auto t = table_for_path(path);
  return t ? t->file_offset_to_vaddr(file_offset) : std::nullopt;
}

}  // namespace loopstall::native
