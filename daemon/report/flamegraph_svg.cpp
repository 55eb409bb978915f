// The flame graph as one self-contained SVG: every frame drawn (so it reads
// without scripts too), plus a small script for details on hover, click to
// zoom and search. Root at the bottom, children left to right by name.
#include <cmath>
#include <cstdio>

#include "loopstall/flamegraph.hpp"

namespace loopstall {
namespace {

constexpr double kPad = 10, kFrameH = 16, kTop = 70, kBottom = 34, kFontPx = 12;
constexpr double kCharPx = kFontPx * 0.6;  // monospace advance, to fit labels before the script refits them
constexpr double kMinWidthPx = 0.1;        // narrower frames (and what is above them) are left out

std::string xml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A stable 0..1 from a name: neighbours get different shades of one hue.
double shade(const std::string& name, unsigned salt) {
  std::uint32_t h = 2166136261u ^ salt;
  for (unsigned char c : name) h = (h ^ c) * 16777619u;
  return static_cast<double>(h % 1000) / 1000.0;
}

std::string hsl(double h, double s, double l) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "hsl(%.0f,%.0f%%,%.0f%%)", h, s, l);
  return buf;
}

std::string kind_colour(const FlameFrame& f) {
  switch (f.kind) {
    case FrameKind::Root: return "hsl(0,0%,80%)";
    case FrameKind::Loop: return "hsl(210,12%,72%)";
    case FrameKind::Python: return hsl(38 + 16 * shade(f.name, 1), 80, 58 + 10 * shade(f.name, 2));
    case FrameKind::Native: return hsl(22 + 10 * shade(f.name, 1), 35, 60 + 10 * shade(f.name, 2));
    case FrameKind::OnCpu: return "hsl(0,78%,55%)";
    case FrameKind::Gc: return "hsl(125,50%,45%)";
    case FrameKind::Runqueue: return "hsl(285,50%,62%)";
    case FrameKind::Blocked: return "hsl(212,75%,55%)";
  }
  return "grey";
}

// Red: more in B, blue: less; the deeper, the larger the change.
std::string diff_colour(const FlameNode& n, double max_abs) {
  const double d = n.b_ms - n.a_ms;
  if (max_abs <= 0 || std::fabs(d) < 1e-9) return "rgb(235,235,235)";
  const int fade = static_cast<int>(std::lround(225 - 185 * std::min(1.0, std::fabs(d) / max_abs)));
  char buf[40];
  if (d > 0)
    std::snprintf(buf, sizeof buf, "rgb(255,%d,%d)", fade, fade);
  else
    std::snprintf(buf, sizeof buf, "rgb(%d,%d,255)", fade, fade);
  return buf;
}

// The frame's name, " \u2014 ", its time: the script takes the name back from
// the last separator (names are not repeated in the file).
std::string details(const FlameNode& n, const FlameGraph& g) {
  const double total = g.nodes[0].width_ms;
  if (!g.differential)
    return n.frame.name + " \u2014 " + fmt("%.1f ms", n.b_ms) + ", " +
           fmt("%.1f%% of stalled time", total > 0 ? 100 * n.b_ms / total : 0);
  const double d = n.b_ms - n.a_ms;
  std::string s = n.frame.name + " \u2014 A " + fmt("%.1f ms", n.a_ms) + ", B " + fmt("%.1f ms", n.b_ms) + ", " +
                  fmt("%+.1f ms", d);
  if (n.a_ms > 0) s += fmt(" (%+.0f%%)", 100 * d / n.a_ms);
  return s;
}

// The label that fits w px ("" when not even a few characters do).
std::string fit(const std::string& name, double w) {
  const auto room = static_cast<std::size_t>(std::max(0.0, (w - 6) / kCharPx));
  if (room < 3) return "";
  if (name.size() <= room) return name;
  std::size_t cut = room - 2;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
  return name.substr(0, cut) + "..";
}

void legend(std::string& out, const FlameGraph& g, double y) {
  std::vector<std::pair<const char*, std::string>> items;
  if (g.differential)
    items = {{"more in B", "rgb(255,60,60)"}, {"less in B", "rgb(60,60,255)"}, {"unchanged", "rgb(235,235,235)"}};
  else
    items = {{"Python", hsl(45, 80, 62)},
             {"native", hsl(26, 35, 64)},
             {"on-CPU", "hsl(0,78%,55%)"},
             {"blocked in a syscall", "hsl(212,75%,55%)"},
             {"waiting for a CPU", "hsl(285,50%,62%)"},
             {"GC", "hsl(125,50%,45%)"}};
  double x = kPad;
  for (const auto& [label, colour] : items) {
    out += "<rect x=\"" + fmt("%.0f", x) + "\" y=\"" + fmt("%.0f", y - 10) + "\" width=\"12\" height=\"12\" fill=\"" +
           colour + "\" stroke=\"#888\" stroke-width=\"0.5\"/><text x=\"" + fmt("%.0f", x + 16) + "\" y=\"" +
           fmt("%.0f", y) + "\" class=\"small\">" + label + "</text>";
    x += 16 + 7 * static_cast<double>(std::string(label).size()) + 18;
  }
  out += "\n";
}

}  // namespace

std::string flame_svg(const FlameGraph& g, const SvgOptions& opt) {
  const double w = opt.width_px, usable = w - 2 * kPad;
  const double h = kTop + (g.max_depth() + 1) * kFrameH + kBottom;
  const double total = g.nodes.empty() ? 0 : g.nodes[0].width_ms;
  const double px_per_ms = total > 0 ? usable / total : 0;
  std::string out;
  out.reserve(256 + g.nodes.size() * 220);
  out += "<?xml version=\"1.0\" standalone=\"no\"?>\n";
  out += "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", w) + "\" height=\"" +
         fmt("%.0f", h) + "\" viewBox=\"0 0 " + fmt("%.0f", w) + " " + fmt("%.0f", h) + "\" data-total-ms=\"" +
         fmt("%.3f", total) + "\">\n";
  out += "<style>text{font-family:monospace;font-size:" + fmt("%.0f", kFontPx) +
         "px;fill:#000}.title{font-size:17px}.small{font-size:11px}.btn{cursor:pointer;fill:#224}"
         ".btn:hover{text-decoration:underline}.hidden{display:none}g.f{cursor:pointer}"
         "g.f text{pointer-events:none}g.f:hover rect{stroke:#000;stroke-width:0.6}g.zp rect{opacity:0.55}"
         "</style>\n";
  out += "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#f8f8f2\"/>\n";
  out += "<text id=\"title\" class=\"title\" x=\"" + fmt("%.1f", w / 2) + "\" y=\"22\" text-anchor=\"middle\">" +
         xml(opt.title) + "</text>\n";
  out += "<text id=\"subtitle\" class=\"small\" x=\"" + fmt("%.1f", w / 2) + "\" y=\"40\" text-anchor=\"middle\">" +
         xml(opt.subtitle) + "</text>\n";
  out += "<text id=\"unzoom\" class=\"btn hidden\" x=\"" + fmt("%.0f", kPad) + "\" y=\"22\">Reset Zoom</text>\n";
  out += "<text id=\"search\" class=\"btn\" x=\"" + fmt("%.0f", w - kPad) +
         "\" y=\"22\" text-anchor=\"end\">Search</text>\n";
  legend(out, g, 60);
  out += "<text id=\"details\" x=\"" + fmt("%.0f", kPad) + "\" y=\"" + fmt("%.0f", h - 12) + "\"> </text>\n";
  out += "<text id=\"matched\" x=\"" + fmt("%.0f", w - kPad) + "\" y=\"" + fmt("%.0f", h - 12) +
         "\" text-anchor=\"end\"> </text>\n";
  if (total <= 0)
    out += "<text x=\"" + fmt("%.1f", w / 2) + "\" y=\"" + fmt("%.0f", kTop + 20) +
           "\" text-anchor=\"middle\">No stall time in this capture</text>\n";

  double max_abs = 0;
  for (const FlameNode& n : g.nodes)
    if (n.depth > 0) max_abs = std::max(max_abs, std::fabs(n.b_ms - n.a_ms));
  std::vector<double> x(g.nodes.size(), kPad);
  std::vector<bool> drawn(g.nodes.size(), false);
  out += "<g id=\"frames\">\n";
  for (std::size_t i = 0; i < g.nodes.size() && total > 0; ++i) {
    const FlameNode& n = g.nodes[i];
    const double fw = n.width_ms * px_per_ms;
    if (i != 0 && (!drawn[n.parent] || fw < kMinWidthPx)) continue;
    drawn[i] = true;
    double cx = x[i];
    for (std::size_t c : n.children) {
      x[c] = cx;
      cx += g.nodes[c].width_ms * px_per_ms;
    }
    const double y = h - kBottom - (n.depth + 1) * kFrameH;
    out += "<g class=\"f\"><title>" + xml(details(n, g)) + "</title><rect x=\"" + fmt("%.2f", x[i]) + "\" y=\"" +
           fmt("%.0f", y) + "\" width=\"" + fmt("%.2f", fw) + "\" height=\"" + fmt("%.0f", kFrameH - 1) +
           "\" rx=\"2\" fill=\"" + (g.differential ? diff_colour(n, max_abs) : kind_colour(n.frame)) +
           "\"/><text x=\"" + fmt("%.2f", x[i] + 3) + "\" y=\"" + fmt("%.0f", y + kFrameH - 4.5) + "\">" +
           xml(fit(n.frame.name, fw)) + "</text></g>\n";
  }
  out += "</g>\n<script type=\"text/ecmascript\"><![CDATA[\n";
  out += kFlameScript;
  out += "]]></script>\n</svg>\n";
  return out;
}

}  // namespace loopstall
