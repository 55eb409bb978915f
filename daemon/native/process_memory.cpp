#include "loopstall/process_memory.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <array>

namespace loopstall {

std::optional<std::string> Memory::read_cstring(std::uint64_t addr, std::size_t max) const {
  std::string out;
  std::array<char, 64> chunk{};
  while (out.size() < max) {
    const std::size_t want = std::min(chunk.size(), max - out.size());
    // A string may end just before an unmapped page: fall back to bytes.
    if (!read(addr + out.size(), chunk.data(), want)) {
      char c = 0;
      if (!read(addr + out.size(), &c, 1)) return out.empty() ? std::nullopt : std::optional<std::string>(out);
      if (c == '\0') return out;
      out.push_back(c);
      continue;
    }
    const auto* nul = std::find(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(want), '\0');
    out.append(chunk.data(), static_cast<std::size_t>(nul - chunk.begin()));
    if (nul != chunk.begin() + static_cast<std::ptrdiff_t>(want)) return out;
  }
  return out;
}

namespace {

// The bytes from addr + at to the end of their page, at most n - at.
std::size_t to_page_end(std::uint64_t addr, std::size_t at, std::size_t n) {
  return std::min<std::size_t>(n - at, Memory::kPageSize - (addr + at) % Memory::kPageSize);
}

}  // namespace

std::size_t Memory::read_pages(std::uint64_t addr, void* buf, std::size_t n) const {
  std::size_t got = 0;
  while (got < n) {
    const std::size_t chunk = to_page_end(addr, got, n);
    if (!read(addr + got, static_cast<std::uint8_t*>(buf) + got, chunk)) break;
    got += chunk;
  }
  return got;
}

std::size_t ProcessMemory::read_pages(std::uint64_t addr, void* buf, std::size_t n) const {
  constexpr std::size_t kMaxPieces = 64;  // 256 KiB; more goes piece by piece
  if (n == 0 || addr == 0 || addr + n < addr || n > (kMaxPieces - 1) * kPageSize)
    return Memory::read_pages(addr, buf, n);
  std::array<iovec, kMaxPieces> remote{};
  std::size_t pieces = 0;
  for (std::size_t at = 0; at < n; ++pieces) {
    const std::size_t len = to_page_end(addr, at, n);
    remote[pieces] = {reinterpret_cast<void*>(addr + at), len};
    at += len;
  }
  iovec local{buf, n};
  const ssize_t got = process_vm_readv(pid_, &local, 1, remote.data(), pieces, 0);
  return got > 0 ? static_cast<std::size_t>(got) : 0;
}

bool ProcessMemory::read(std::uint64_t addr, void* buf, std::size_t n) const {
  if (n == 0) return true;
  if (addr == 0 || addr + n < addr) return false;  // NULL or wrapping
  iovec local{buf, n};
  iovec remote{reinterpret_cast<void*>(addr), n};
  const ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  return got == static_cast<ssize_t>(n);
}

}  // namespace loopstall
