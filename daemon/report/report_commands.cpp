#include "loopstall/report_commands.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "loopstall/capture_file.hpp"
#include "loopstall/diff.hpp"
#include "loopstall/flamegraph.hpp"

namespace loopstall {
namespace {

void write_output(const std::string& path, const std::string& data) {
  if (path == "-") {
    if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size() || std::fflush(stdout) != 0)
      throw std::runtime_error(std::string("writing to stdout failed: ") + std::strerror(errno));
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) throw std::runtime_error("writing " + path + " failed: " + std::strerror(err));
}

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string describe(const Capture& c, bool brief) {
  double ms = 0;
  for (const auto& ev : c.stalls) ms += ev["duration_ms"].get<double>();
  char buf[512];
  if (brief)
    std::snprintf(buf, sizeof buf, "%zu stall(s), %.1f ms stalled", c.stalls.size(), ms);
  else
    std::snprintf(buf, sizeof buf, "%zu stall(s), %.1f ms stalled; %.1f s captured on %s (threshold %g ms)",
                  c.stalls.size(), ms, c.duration_s(), c.meta.host.c_str(), c.meta.threshold_ms);
  return buf;
}

}  // namespace

int flamegraph_command(const std::string& capture, const std::string& output, const std::string& format) {
  const Capture c = read_capture(capture);
  const std::vector<FlameStack> stacks = stall_stacks(c);
  if (format == "folded") {
    write_output(output, folded_stacks(stacks));
  } else if (format == "speedscope") {
    const auto j = speedscope_profile(stacks, base_name(capture));
    write_output(output, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  } else {
    SvgOptions opt;
    opt.title = "Stall time: " + base_name(capture);
    opt.subtitle = describe(c, false);
    write_output(output, flame_svg(flame_graph(stacks), opt));
  }
  return 0;
}

int diff_command(const std::string& a, const std::string& b, const std::string& svg_output) {
  const Capture ca = read_capture(a), cb = read_capture(b);
  const std::string table = format_diff_text(diff_captures(ca, cb, a, b));
  if (!svg_output.empty()) {
    SvgOptions opt;
    opt.title = "Stall time from " + base_name(a) + " to " + base_name(b);
    opt.subtitle = "A: " + describe(ca, true) + "; B: " + describe(cb, true) +
                   ". Red: more in B, blue: less; widths: the larger of A and B";
    write_output(svg_output, flame_svg(diff_flame_graph(stall_stacks(ca), stall_stacks(cb)), opt));
  }
  if (svg_output == "-")
    std::fputs(table.c_str(), stderr);  // the SVG went to stdout
  else
    write_output("-", table);
  return 0;
}

}  // namespace loopstall
