#include "loopstall/python/code_resolver.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "loopstall/python/line_table.hpp"

namespace loopstall::python {
namespace {

template <typename T>
T field(const std::uint8_t* block, std::uint32_t off) {
  T v{};
  std::memcpy(&v, block + off, sizeof v);
  return v;
}

}  // namespace

std::optional<CodeResolver::Header> CodeResolver::read_header(const Memory& mem, std::uint64_t code) const {
  std::array<std::uint8_t, 256> block{};
  if (!plausible_pointer(code) || o_.code_size > block.size() || !mem.read(code, block.data(), o_.code_size)) {
    return std::nullopt;
  }
  if (types_.code != 0 && field<std::uint64_t>(block.data(), o_.object_type) != types_.code) return std::nullopt;
  Header h;
  h.filename = field<std::uint64_t>(block.data(), o_.code_filename);
  h.name = field<std::uint64_t>(block.data(), o_.code_name);
  if (o_.code_qualname != kNoField) h.qualname = field<std::uint64_t>(block.data(), o_.code_qualname);
  h.linetable = field<std::uint64_t>(block.data(), o_.code_linetable);
  if (o_.code_nunits != kNoField) h.nunits = field<std::int64_t>(block.data(), o_.code_nunits);
  h.firstlineno = field<std::int32_t>(block.data(), o_.code_firstlineno);
  return h;
}

CodeResolver::Entry CodeResolver::decode(const Memory& mem, const Header& h) const {
  Entry e;
  e.header = h;
  std::optional<std::string> function;
  if (h.qualname) function = read_unicode(mem, o_, h.qualname, types_.unicode);
  if (!function || function->empty()) function = read_unicode(mem, o_, h.name, types_.unicode);
  e.function = function && !function->empty() ? *function : kUnknown;
  e.file = read_unicode(mem, o_, h.filename, types_.unicode).value_or(kUnknown);
  if (auto table = read_bytes(mem, o_, h.linetable, types_.bytes)) {
    e.table = std::move(*table);
    e.table_ok = true;
  }
  return e;
}

std::optional<int> CodeResolver::line(const Entry& e, const RawFrame& frame) const {
  if (!e.table_ok) return std::nullopt;
  std::int64_t offset = 0;  // bytes into the bytecode
  switch (o_.instr_kind) {
    case InstrKind::kLastiBytes: offset = static_cast<std::int32_t>(frame.instr); break;
    case InstrKind::kLastiCodeUnits: {
      const auto lasti = static_cast<std::int32_t>(frame.instr);
      offset = lasti < 0 ? -1 : 2 * static_cast<std::int64_t>(lasti);
      break;
    }
    case InstrKind::kPointer: {
      // Before the first instruction (a frame just pushed, 3.11's prev_instr = code - 1) counts as the
      // def line, as CPython does; past the bytecode is garbage.
      const std::uint64_t first = frame.code + o_.code_adaptive;
      if (frame.instr < first) {
        offset = frame.instr + 2 >= first ? -1 : INT64_MIN;
      } else {
        offset = static_cast<std::int64_t>(std::min<std::uint64_t>(frame.instr - first, INT64_MAX));
      }
      // ob_size is untrusted: compare in code units so nothing can overflow.
      if (offset == INT64_MIN || (e.header.nunits >= 0 && offset / 2 >= e.header.nunits)) return std::nullopt;
      break;
    }
  }
  return line_for_offset(o_.line_table_kind, e.table, e.header.firstlineno, offset);
}

PyFrame CodeResolver::resolve(const Memory& mem, const RawFrame& frame) {
  return try_resolve(mem, frame).value_or(PyFrame{kUnknown, kUnknown, std::nullopt});
}

const CodeResolver::Entry* CodeResolver::entry(const Memory& mem, std::uint64_t code) {
  const auto header = read_header(mem, code);
  if (!header) return nullptr;
  auto it = cache_.find(code);
  if (it == cache_.end() || !(it->second.header == *header)) {
    if (it != cache_.end()) {
      cached_bytes_ -= it->second.table.size() + it->second.function.size() + it->second.file.size();
      cache_.erase(it);
    }
    Entry e = decode(mem, *header);
    const std::size_t bytes = e.table.size() + e.function.size() + e.file.size();
    if (cache_.size() >= kMaxEntries || cached_bytes_ + bytes > kMaxCachedBytes) clear();
    cached_bytes_ += bytes;
    it = cache_.emplace(code, std::move(e)).first;
  }
  return &it->second;
}

std::optional<PyFrame> CodeResolver::try_resolve(const Memory& mem, const RawFrame& frame) {
  const Entry* e = entry(mem, frame.code);
  if (e == nullptr) return std::nullopt;
  return PyFrame{e->function, e->file, line(*e, frame)};
}

std::vector<PyFrame> CodeResolver::resolve_stack(const Memory& mem, const std::vector<RawFrame>& frames) {
  std::vector<PyFrame> out;
  out.reserve(frames.size());
  std::vector<std::uint64_t> validated;  // few distinct code objects per stack
  const RawFrame* last = nullptr;        // recursion: the same frame again
  for (const RawFrame& f : frames) {
    if (last && f.code == last->code && f.instr == last->instr) {
      out.push_back(out.back());
      continue;
    }
    const Entry* e = nullptr;
    if (std::find(validated.begin(), validated.end(), f.code) != validated.end()) {
      // Still cached unless a bound cleared the cache meanwhile.
      if (const auto it = cache_.find(f.code); it != cache_.end()) e = &it->second;
    }
    if (e == nullptr) {
      e = entry(mem, f.code);
      if (e == nullptr) break;
      validated.push_back(f.code);
    }
    out.push_back(PyFrame{e->function, e->file, line(*e, f)});
    last = &f;
  }
  return out;
}

}  // namespace loopstall::python
