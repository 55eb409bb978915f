#include "recording.hpp"

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "loopstall/native/symbolizer.hpp"

namespace loopstall::native::test {

// Text header, one item a line (tab-separated where a field may hold
// spaces), then the maps text and the raw stack bytes, each preceded by
// their length:
//   loopstall-native-recording 1
//   description\t<text>
//   regs <ip> <sp> <bp> <bx> <r12> <r13> <r14> <r15> <known>   (hex)
//   stack_base <hex>
//   build_id\t<hex>\t<path>
//   frame\t<offset hex>\t<symbol>\t<module>
//   maps <n>\n<n bytes>
//   stack <n>\n<n bytes>
bool save_recording(const std::string& path, const Recording& rec) {
  std::ofstream out(path, std::ios::binary);
  const UserRegs& r = rec.snap.regs;
  char line[512];
  out << "loopstall-native-recording 1\n";
  out << "description\t" << rec.description << "\n";
  std::snprintf(line, sizeof line,
                "regs %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64
                " %x\n",
                r.ip, r.sp, r.bp, r.bx, r.r12, r.r13, r.r14, r.r15, r.known);
  out << line;
  std::snprintf(line, sizeof line, "stack_base %" PRIx64 "\n", rec.snap.stack_base);
  out << line;
  for (const auto& [file, id] : rec.build_ids) out << "build_id\t" << id << "\t" << file << "\n";
  for (const auto& f : rec.expected) {
    std::snprintf(line, sizeof line, "%" PRIx64, f.offset);
    out << "frame\t" << line << "\t" << f.symbol << "\t" << f.module << "\n";
  }
  out << "maps " << rec.maps.size() << "\n" << rec.maps;
  out << "stack " << rec.snap.stack.size() << "\n";
  out.write(reinterpret_cast<const char*>(rec.snap.stack.data()), static_cast<std::streamsize>(rec.snap.stack.size()));
  return static_cast<bool>(out);
}

namespace {

std::vector<std::string> split_tabs(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t tab = s.find('\t', start);
    out.push_back(s.substr(start, tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

}  // namespace

std::optional<Recording> load_recording(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t pos = 0;
  auto next_line = [&](std::string& line) {
    if (pos >= data.size()) return false;
    const std::size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) return false;
    line = data.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };
  std::string line;
  if (!next_line(line) || line != "loopstall-native-recording 1") return std::nullopt;
  Recording rec;
  while (next_line(line)) {
    if (line.starts_with("description\t")) {
      rec.description = line.substr(12);
    } else if (line.starts_with("regs ")) {
      UserRegs& r = rec.snap.regs;
      if (std::sscanf(line.c_str(),
                      "regs %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64
                      " %" SCNx64 " %x",
                      &r.ip, &r.sp, &r.bp, &r.bx, &r.r12, &r.r13, &r.r14, &r.r15, &r.known) != 9) {
        return std::nullopt;
      }
    } else if (line.starts_with("stack_base ")) {
      if (std::sscanf(line.c_str(), "stack_base %" SCNx64, &rec.snap.stack_base) != 1) return std::nullopt;
    } else if (line.starts_with("build_id\t")) {
      const auto f = split_tabs(line);
      if (f.size() != 3) return std::nullopt;
      rec.build_ids.emplace_back(f[2], f[1]);
    } else if (line.starts_with("frame\t")) {
      const auto f = split_tabs(line);
      if (f.size() != 4) return std::nullopt;
      rec.expected.push_back({f[2], f[3], std::stoull(f[1], nullptr, 16)});
    } else if (line.starts_with("maps ") || line.starts_with("stack ")) {
      const bool maps = line[0] == 'm';
      const std::size_t n = std::stoull(line.substr(maps ? 5 : 6));
      if (n > data.size() - pos) return std::nullopt;
      if (maps) {
        rec.maps = data.substr(pos, n);
      } else {
        rec.snap.stack.assign(data.begin() + static_cast<std::ptrdiff_t>(pos),
                              data.begin() + static_cast<std::ptrdiff_t>(pos + n));
      }
      pos += n;
    } else {
      return std::nullopt;
    }
  }
  return rec;
}

std::vector<std::string> mismatched_build_ids(const Recording& rec) {
  std::vector<std::string> out;
  for (const auto& [file, id] : rec.build_ids) {
    if (read_build_id(file) != id) out.push_back(file);
  }
  return out;
}

}  // namespace loopstall::native::test
