// The one way loopstall opens a file another process maps or runs, and its
// ELF view. Such a path is chosen by that process's owner, who can replace
// the file at any moment (a deleted executable's old path may now be a
// FIFO): the file is opened once, without blocking, checked to be a regular
// file (and, when asked, the expected inode) on the descriptor itself, and
// everything after works on that descriptor, never on the path again.
#pragma once

#include <libelf.h>
#include <sys/stat.h>

#include <cstdint>
#include <string>

namespace loopstall::native {

// A regular file opened read-only (O_NONBLOCK, O_CLOEXEC), or -1. want_inode:
// 0 for any, else the file must be that inode (a mapping's). The caller closes it.
int open_regular_file(const std::string& path, std::uint64_t want_inode = 0);

class ElfFile {
 public:
  ElfFile() = default;
  // Not ELF, not a regular file, not that inode, or not there: valid() is false.
  explicit ElfFile(const std::string& path, std::uint64_t want_inode = 0);
  // Takes ownership of fd (from open_regular_file).
  static ElfFile adopt(int fd);
  ~ElfFile();
  ElfFile(ElfFile&& o) noexcept;
  ElfFile& operator=(ElfFile&& o) noexcept;
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  bool valid() const { return elf_ != nullptr; }
  Elf* get() const { return elf_; }
  // The open descriptor (-1 once released): /proc/self/fd/N names exactly this file.
  int fd() const { return fd_; }
  // fstat of the descriptor: device, inode, size and mtime of what was opened.
  const struct stat& stat() const { return st_; }
  // Hands the Elf to the caller (who elf_end()s it); the whole file stays
  // mapped, so the descriptor is closed now.
  Elf* release();

 private:
  void reset();
  int fd_ = -1;
  Elf* elf_ = nullptr;
  struct stat st_ {};
};

}  // namespace loopstall::native
