// An in-memory stand-in for another process: byte regions at chosen addresses.
// Reads succeed only when fully inside one region, like process_vm_readv on
// separate mappings.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "loopstall/process_memory.hpp"

namespace loopstall::python::testing {

class FakeMemory final : public Memory {
 public:
  bool read(std::uint64_t addr, void* buf, std::size_t n) const override {
    ++reads_;
    if (n == 0) return true;
    auto it = regions_.upper_bound(addr);
    if (it == regions_.begin()) return false;
    --it;
    const std::uint64_t off = addr - it->first;
    if (off > it->second.size() || n > it->second.size() - off) return false;
    std::memcpy(buf, it->second.data() + off, n);
    return true;
  }

  // A zeroed region of `size` bytes at `addr` (replaces one starting there).
  void map(std::uint64_t addr, std::size_t size) { regions_[addr].assign(size, 0); }
  void map(std::uint64_t addr, const std::vector<std::uint8_t>& bytes) { regions_[addr] = bytes; }

  void write(std::uint64_t addr, const void* data, std::size_t n) {
    auto it = regions_.upper_bound(addr);
    --it;
    std::memcpy(it->second.data() + (addr - it->first), data, n);
  }
  template <typename T>
  void put(std::uint64_t addr, T v) {
    write(addr, &v, sizeof v);
  }

  std::size_t reads() const { return reads_; }
  const std::map<std::uint64_t, std::vector<std::uint8_t>>& regions() const { return regions_; }

 private:
  std::map<std::uint64_t, std::vector<std::uint8_t>> regions_;
  mutable std::size_t reads_ = 0;
};

}  // namespace loopstall::python::testing
