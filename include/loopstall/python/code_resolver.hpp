// Raw frame (code object address, instruction) -> {function, file, line}.
// Decoded code objects are cached per code address (a resolver belongs to one
// process); a cache hit is re-validated against the code object's current
// header, so a freed and reused address is noticed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "loopstall/process_memory.hpp"
#include "loopstall/python/frame_walker.hpp"
#include "loopstall/python/offsets.hpp"
#include "loopstall/python/py_objects.hpp"
#include "loopstall/stall.hpp"

namespace loopstall::python {

inline constexpr const char* kUnknown = "<unknown>";

class CodeResolver {
 public:
  explicit CodeResolver(const PyOffsets& o, PyTypeAddrs types = {}) : o_(o), types_(types) {}

  // function = co_qualname (3.11+) or co_name; line = nullopt when the
  // instruction has no line or the code object could not be read.
  PyFrame resolve(const Memory& mem, const RawFrame& frame);
  // nullopt when frame.code is unreadable or (type known) not a code object.
  std::optional<PyFrame> try_resolve(const Memory& mem, const RawFrame& frame);
  // One stack, innermost first, up to the first frame that does not resolve.
  // Each distinct code object is validated once per call: the frames were read
  // at one moment, and a code object they share is one object for all of them
  // (deep recursion costs one header read, not one per frame); a frame
  // repeating the one before it (recursion) is not decoded again.
  std::vector<PyFrame> resolve_stack(const Memory& mem, const std::vector<RawFrame>& frames);

  std::size_t cache_size() const { return cache_.size(); }
  void clear() {
    cache_.clear();
    cached_bytes_ = 0;
  }

  // Bounds on what a hostile process can make us hold.
  static constexpr std::size_t kMaxEntries = 8192;
  static constexpr std::size_t kMaxCachedBytes = 32 << 20;

 private:
  // The code object fields that identify it; compared on every hit.
  struct Header {
    std::uint64_t filename = 0, name = 0, qualname = 0, linetable = 0;
    std::int64_t nunits = -1;
    std::int32_t firstlineno = 0;
    bool operator==(const Header&) const = default;
  };
  struct Entry {
    Header header;
    std::string function;
    std::string file;
    std::vector<std::uint8_t> table;
    bool table_ok = false;
  };

  std::optional<Header> read_header(const Memory& mem, std::uint64_t code) const;
  Entry decode(const Memory& mem, const Header& h) const;
  std::optional<int> line(const Entry& e, const RawFrame& frame) const;
  // The validated (decoded again if changed) entry of a code object; nullptr
  // when unreadable. Valid until the next call.
  const Entry* entry(const Memory& mem, std::uint64_t code);

  PyOffsets o_;
  PyTypeAddrs types_;
  std::unordered_map<std::uint64_t, Entry> cache_;
  std::size_t cached_bytes_ = 0;
};

}  // namespace loopstall::python
