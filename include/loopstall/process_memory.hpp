// Reading another process's memory. Everything read is hostile: callers get
// bounded reads that fail cleanly (process gone, address unmapped, garbage
// pointer) and never fault or block.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace loopstall {

class Memory {
 public:
  virtual ~Memory() = default;
  // Exactly n bytes at addr, or false.
  virtual bool read(std::uint64_t addr, void* buf, std::size_t n) const = 0;

  template <typename T>
  std::optional<T> read_as(std::uint64_t addr) const {
    T v{};
    if (!read(addr, &v, sizeof v)) return std::nullopt;
    return v;
  }
  // A NUL-terminated string of at most max bytes (truncated, not failed,
  // when no NUL is found within max).
  std::optional<std::string> read_cstring(std::uint64_t addr, std::size_t max) const;
  // Up to n bytes at addr, page by page until the first page that cannot be
  // read (where a thread's stack mapping ends): how many were read.
  virtual std::size_t read_pages(std::uint64_t addr, void* buf, std::size_t n) const;

  static constexpr std::uint64_t kPageSize = 4096;
};

// process_vm_readv on a live process.
class ProcessMemory final : public Memory {
 public:
  explicit ProcessMemory(pid_t pid) : pid_(pid) {}
  bool read(std::uint64_t addr, void* buf, std::size_t n) const override;
  // In one process_vm_readv (one remote piece per page: a partial read ends
  // at the first unreadable piece).
  std::size_t read_pages(std::uint64_t addr, void* buf, std::size_t n) const override;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

}  // namespace loopstall
