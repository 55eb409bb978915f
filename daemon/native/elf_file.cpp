#include "loopstall/native/elf_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace loopstall::native {

int open_regular_file(const std::string& path, std::uint64_t want_inode) {
  // Never block: a FIFO or a device where a mapped file was must not stop the daemon.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (want_inode != 0 && st.st_ino != want_inode)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

ElfFile::ElfFile(const std::string& path, std::uint64_t want_inode)
    : ElfFile(adopt(open_regular_file(path, want_inode))) {}

ElfFile ElfFile::adopt(int fd) {
  ElfFile f;
  f.fd_ = fd;
  if (fd < 0 || ::fstat(fd, &f.st_) != 0 || elf_version(EV_CURRENT) == EV_NONE) return f;
  f.elf_ = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (f.elf_ != nullptr && elf_kind(f.elf_) != ELF_K_ELF) {
    elf_end(f.elf_);
    f.elf_ = nullptr;
  }
  return f;
}

ElfFile::~ElfFile() {
  reset();
}

ElfFile::ElfFile(ElfFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), elf_(std::exchange(o.elf_, nullptr)), st_(o.st_) {}

ElfFile& ElfFile::operator=(ElfFile&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    elf_ = std::exchange(o.elf_, nullptr);
    st_ = o.st_;
  }
  return *this;
}

void ElfFile::reset() {
  if (elf_ != nullptr) elf_end(elf_);
  if (fd_ >= 0) ::close(fd_);
  elf_ = nullptr;
  fd_ = -1;
}

Elf* ElfFile::release() {
  if (elf_ != nullptr) elf_cntl(elf_, ELF_C_FDDONE);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return std::exchange(elf_, nullptr);
}

}  // namespace loopstall::native
