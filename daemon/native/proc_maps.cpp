#include "loopstall/native/proc_maps.hpp"

#include <algorithm>
#include <charconv>

#include "loopstall/procfs.hpp"

namespace loopstall::native {
namespace {

bool parse_hex(std::string_view& s, std::uint64_t& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  if (ec != std::errc() || p == s.data()) return false;
  s.remove_prefix(static_cast<std::size_t>(p - s.data()));
  return true;
}

bool parse_dec(std::string_view& s, std::uint64_t& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  if (ec != std::errc() || p == s.data()) return false;
  s.remove_prefix(static_cast<std::size_t>(p - s.data()));
  return true;
}

bool eat(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

void skip_spaces(std::string_view& s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

// "start-end perms offset major:minor inode   path"
std::optional<Mapping> parse_line(std::string_view s) {
  Mapping m;
  std::uint64_t major = 0, minor = 0;
  if (!parse_hex(s, m.start) || !eat(s, '-') || !parse_hex(s, m.end) || !eat(s, ' ')) return std::nullopt;
  if (s.size() < 5 || m.end <= m.start) return std::nullopt;
  m.readable = s[0] == 'r';
  m.writable = s[1] == 'w';
  m.executable = s[2] == 'x';
  s.remove_prefix(4);
  if (!eat(s, ' ') || !parse_hex(s, m.offset) || !eat(s, ' ') || !parse_hex(s, major) || !eat(s, ':') ||
      !parse_hex(s, minor) || !eat(s, ' ') || !parse_dec(s, m.inode)) {
    return std::nullopt;
  }
  m.dev_major = static_cast<std::uint32_t>(major);
  m.dev_minor = static_cast<std::uint32_t>(minor);
  skip_spaces(s);
  m.path = std::string(s);
  return m;
}

bool same_file(const Mapping& a, const Mapping& b) {
  return a.inode == b.inode && a.dev_major == b.dev_major && a.dev_minor == b.dev_minor && a.path == b.path;
}

}  // namespace

bool Mapping::deleted() const {
  return is_deleted(path);
}

std::string Mapping::file_path() const {
  return std::string(strip_deleted(path));
}

std::vector<Mapping> parse_maps(std::string_view text) {
  std::vector<Mapping> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (auto m = parse_line(line)) out.push_back(std::move(*m));
  }
  return out;
}

const Mapping* find_mapping(const std::vector<Mapping>& maps, std::uint64_t addr) {
  auto it =
      std::upper_bound(maps.begin(), maps.end(), addr, [](std::uint64_t a, const Mapping& m) { return a < m.start; });
  if (it == maps.begin()) return nullptr;
  --it;
  return addr < it->end ? &*it : nullptr;
}

std::vector<ModuleSpan> code_modules(const std::vector<Mapping>& maps) {
  std::vector<ModuleSpan> out;
  const Mapping* last = nullptr;  // last file-backed mapping of the open span
  for (std::size_t i = 0; i < maps.size(); ++i) {
    const Mapping& m = maps[i];
    if (m.path == "[vdso]") {
      out.push_back({m.path, m.start, m.end, i, true, true});
      last = nullptr;
    } else if (!m.file_backed()) {
      continue;
    } else if (last != nullptr && same_file(*last, m) && m.start >= out.back().end) {
      // (Ascending only: the kernel's order. A recording out of order gets
      // one span per run instead of a span that ends before it starts.)
      out.back().end = m.end;
      out.back().executable |= m.executable;
      last = &m;
    } else {
      out.push_back({m.path, m.start, m.end, i, m.executable, false});
      last = &m;
    }
  }
  std::erase_if(out, [](const ModuleSpan& s) { return !s.executable; });
  return out;
}

}  // namespace loopstall::native
