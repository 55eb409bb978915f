#include "loopstall/python/py_objects.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace loopstall::python {
namespace {

bool type_matches(const Memory& mem, const PyOffsets& o, std::uint64_t addr, std::uint64_t type) {
  if (type == 0) return true;
  const auto t = mem.read_as<std::uint64_t>(addr + o.object_type);
  return t && *t == type;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

}  // namespace

std::optional<std::string> read_unicode(const Memory& mem, const PyOffsets& o, std::uint64_t addr,
                                        std::uint64_t unicode_type, std::size_t max_chars) {
  if (!plausible_pointer(addr) || o.unicode_ascii_data == 0) return std::nullopt;
  // One read for the header: type, length and state all live in PyASCIIObject.
  std::array<std::uint8_t, 128> head{};
  const std::size_t head_size = std::min<std::size_t>(head.size(), o.unicode_ascii_data);
  if (o.unicode_length + 8 > head_size || o.unicode_state + 4 > head_size || o.object_type + 8 > head_size) {
    return std::nullopt;
  }
  if (!mem.read(addr, head.data(), head_size)) return std::nullopt;
  if (unicode_type != 0) {
    std::uint64_t type = 0;
    std::memcpy(&type, head.data() + o.object_type, sizeof type);
    if (type != unicode_type) return std::nullopt;
  }
  std::int64_t length = 0;
  std::uint32_t state = 0;
  std::memcpy(&length, head.data() + o.unicode_length, sizeof length);
  std::memcpy(&state, head.data() + o.unicode_state, sizeof state);
  const unsigned kind = (state >> 2) & 7;
  const bool compact = (state >> 5) & 1;
  const bool ascii = (state >> 6) & 1;
  if (length < 0 || !compact || (kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1)) return std::nullopt;
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(length), max_chars);
  const std::uint64_t data = addr + (ascii ? o.unicode_ascii_data : o.unicode_compact_data);

  std::vector<std::uint8_t> raw(n * kind);
  if (!raw.empty() && !mem.read(data, raw.data(), raw.size())) return std::nullopt;
  std::string out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t cp = 0;
    switch (kind) {
      case 1: cp = raw[i]; break;
      case 2: cp = raw[2 * i] | (raw[2 * i + 1] << 8); break;
      default:
        cp = raw[4 * i] | (raw[4 * i + 1] << 8) | (raw[4 * i + 2] << 16) |
             (static_cast<std::uint32_t>(raw[4 * i + 3]) << 24);
        break;
    }
    if (ascii && cp >= 0x80) cp = 0xfffd;  // lying ASCII flag: keep the output valid UTF-8
    append_utf8(out, cp);
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> read_bytes(const Memory& mem, const PyOffsets& o, std::uint64_t addr,
                                                    std::uint64_t bytes_type, std::size_t max_bytes) {
  if (!plausible_pointer(addr) || !type_matches(mem, o, addr, bytes_type)) return std::nullopt;
  const auto size = mem.read_as<std::int64_t>(addr + o.bytes_size);
  if (!size || *size < 0 || static_cast<std::uint64_t>(*size) > max_bytes) return std::nullopt;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(*size));
  if (!out.empty() && !mem.read(addr + o.bytes_data, out.data(), out.size())) return std::nullopt;
  return out;
}

}  // namespace loopstall::python
