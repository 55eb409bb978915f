// Flame graphs and diffs of stall time, from small captures recorded from a
// real gevent service with two culprits (tests/unit/data, made with
// tests/workloads/gevent_two_culprits.py, its path rewritten to /srv/app/; no_hog.lsc with
// --hog-ms 0). The service is named after the script: the graph's root is "gevent_two_culprits
// [gevent]"; diff matches loops by command name.
// Golden files: LOOPSTALL_UPDATE_GOLDEN=1 rewrites them (then read the diff).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>

#include "loopstall/capture_file.hpp"
#include "loopstall/diff.hpp"
#include "loopstall/flamegraph.hpp"
#include "loopstall/report.hpp"

using namespace loopstall;
using nlohmann::json;

namespace {

const std::string kData = LOOPSTALL_TEST_DATA_DIR;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void check_golden(const std::string& name, const std::string& got) {
  const std::string path = kData + "/" + name;
  if (std::getenv("LOOPSTALL_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << got;
    return;
  }
  INFO("golden file " << path << " (LOOPSTALL_UPDATE_GOLDEN=1 rewrites it)");
  CHECK(got == read_text(path));
}

double stalled_ms(const Capture& c) {
  double ms = 0;
  for (const json& ev : c.stalls) ms += ev["duration_ms"].get<double>();
  return ms;
}

}  // namespace

TEST_CASE("flame graph: every stall's time is spread over its stacks, nothing lost or added") {
  const Capture c = read_capture(kData + "/two_culprits.lsc");
  REQUIRE(c.stalls.size() == 4);
  const auto stacks = stall_stacks(c);
  double sum = 0;
  for (const FlameStack& s : stacks) {
    sum += s.ms;
    REQUIRE(s.frames.size() >= 2);
    CHECK(s.frames.front().kind == FrameKind::Loop);
    CHECK(s.frames.front().name == "gevent_two_culprits [gevent]");
    const FrameKind leaf = s.frames.back().kind;
    CHECK((leaf == FrameKind::OnCpu || leaf == FrameKind::Blocked || leaf == FrameKind::Runqueue ||
           leaf == FrameKind::Gc));
  }
  CHECK(sum == doctest::Approx(stalled_ms(c)).epsilon(1e-9));
  const FlameGraph g = flame_graph(stacks);
  CHECK(g.nodes[0].width_ms == doctest::Approx(stalled_ms(c)));
  for (const FlameNode& n : g.nodes) {
    double children = 0;
    for (std::size_t ch : n.children) children += g.nodes[ch].width_ms;
    CHECK(children <= n.width_ms + 1e-9);
  }
}

TEST_CASE("flame graph: Python frames, then the C calls they made, then how the time went") {
  const auto stacks = stall_stacks(read_capture(kData + "/two_culprits.lsc"));
  bool blocking = false;
  for (const FlameStack& s : stacks) {
    std::vector<std::string> names;
    for (const FlameFrame& f : s.frames) names.push_back(f.name);
    if (names[1].rfind("blocking_handler (", 0) != 0 || s.frames.back().kind != FrameKind::Blocked) continue;
    blocking = true;
    // Python frame `function (file:line)`, native `symbol (module)` from the
    // ctypes call up to the syscall; no interpreter frames above Python.
    CHECK(names[1].rfind("blocking_handler (/srv/app/gevent_two_culprits.py:", 0) == 0);
    CHECK(names[2].find("_ctypes.cpython-311") != std::string::npos);
    CHECK(names[names.size() - 4] == "usleep (/usr/lib/x86_64-linux-gnu/libc.so.6)");
    CHECK(names[names.size() - 2] == "clock_nanosleep (/usr/lib/x86_64-linux-gnu/libc.so.6)");
    CHECK(names.back() == "[blocked: clock_nanosleep]");
    for (const FlameFrame& f : s.frames) CHECK(f.name.find("_PyEval_EvalFrameDefault") == std::string::npos);
  }
  CHECK(blocking);
}

TEST_CASE("folded stacks: golden") {
  check_golden("two_culprits.folded", folded_stacks(stall_stacks(read_capture(kData + "/two_culprits.lsc"))));
}

TEST_CASE("speedscope: a sampled profile of the file format, weighted by stall time") {
  const Capture c = read_capture(kData + "/two_culprits.lsc");
  const auto doc = speedscope_profile(stall_stacks(c), "two_culprits.lsc");
  CHECK(doc["$schema"] == "https://www.speedscope.app/file-format-schema.json");
  const auto& frames = doc["shared"]["frames"];
  REQUIRE(frames.is_array());
  for (const auto& f : frames) {
    CHECK(f["name"].is_string());
    if (f.contains("line")) CHECK(f["line"].is_number_integer());
    if (f.contains("file")) CHECK(f["file"].is_string());
  }
  REQUIRE(doc["profiles"].size() == 1);
  const auto& p = doc["profiles"][0];
  CHECK(p["type"] == "sampled");
  CHECK(p["unit"] == "microseconds");
  REQUIRE(p["samples"].size() == p["weights"].size());
  long long sum = 0;
  for (const auto& w : p["weights"]) sum += w.get<long long>();
  CHECK(p["endValue"].get<long long>() == sum);
  CHECK(static_cast<double>(sum) == doctest::Approx(stalled_ms(c) * 1000).epsilon(1e-4));
  for (const auto& s : p["samples"]) {
    REQUIRE(!s.empty());
    CHECK(frames[s[0].get<std::size_t>()]["name"] == "gevent_two_culprits [gevent]");  // root first
    for (const auto& i : s) CHECK(i.get<std::size_t>() < frames.size());
  }
  check_golden("two_culprits.speedscope.json", doc.dump(1) + "\n");
}

TEST_CASE("diff: table golden, the hog is the largest change") {
  const Capture a = read_capture(kData + "/two_culprits.lsc"), b = read_capture(kData + "/no_hog.lsc");
  const CaptureDiff d = diff_captures(a, b, "two_culprits.lsc", "no_hog.lsc");
  REQUIRE(!d.python_functions.empty());
  CHECK(d.python_functions[0].name.rfind("hog_handler (", 0) == 0);
  CHECK(d.python_functions[0].b_ms == 0);
  CHECK(d.python_functions[0].delta() < -400);
  REQUIRE(d.loops.size() == 1);
  CHECK(d.loops[0].name == "python3.11 [gevent]");
  CHECK(d.loops[0].a.max > 350);
  check_golden("two_culprits_vs_no_hog.diff.txt", format_diff_text(d));
}

TEST_CASE("diff: a stall whose comm or loop is not a string is named \"\", not an exception") {
  Capture a;
  a.stalls.push_back(json::parse(R"({"pid":1,"comm":1e300,"loop":["x"],"duration_ms":200,"cause":"cpu"})"));
  Capture b;
  b.stalls.push_back(json::parse(R"({"pid":1,"comm":"x","loop":"asyncio","duration_ms":100,"cause":"cpu"})"));
  CaptureDiff d;
  REQUIRE_NOTHROW(d = diff_captures(a, b, "a", "b"));
  REQUIRE(d.loops.size() == 2);
  CHECK(d.loops[0].name == " []");  // the larger change: 200 ms gone
  CHECK(d.loops[1].name == "x [asyncio]");
}

TEST_CASE("differential flame graph: what vanished in B is still drawn, in blue") {
  const auto a = stall_stacks(read_capture(kData + "/two_culprits.lsc"));
  const auto b = stall_stacks(read_capture(kData + "/no_hog.lsc"));
  const FlameGraph g = diff_flame_graph(a, b);
  CHECK(g.differential);
  bool hog = false;
  for (const FlameNode& n : g.nodes)
    if (n.frame.name.rfind("hog_handler (", 0) == 0) {
      hog = true;
      CHECK(n.b_ms == 0);
      CHECK(n.width_ms == doctest::Approx(n.a_ms));
    }
  CHECK(hog);
  const std::string svg = flame_svg(g, {});
  CHECK(svg.find("hog_handler (") != std::string::npos);
  CHECK(svg.find("rgb(40,40,255)") != std::string::npos);  // the largest change, deepest blue
}

TEST_CASE("flame graph SVG: names escaped, frames drawn, the script inside") {
  Capture c;
  c.stalls.push_back(json::parse(R"({"pid":1,"comm":"x","loop":"asyncio","duration_ms":200,"cause":"cpu",
    "breakdown_ms":{"on_cpu":150,"blocked":50,"runqueue":0,"gc":30},
    "syscalls":[{"name":"read","nr":0,"ms":50,"count":1}],
    "python_stacks":[{"samples":2,"frames":[{"function":"<lambda>]]>\u001b[31m","file":"a;b&\"c\".py","line":3}]},
                     {"samples":0,"frames":[]}, {"samples":1,"frames":[7, null]}, 5],
    "native_stack":[{"symbol":"","module":"/lib/x.so","offset":16}, "junk"]})"));
  c.stalls.push_back(json::parse(R"({"pid":1,"duration_ms":100,"breakdown_ms":"no"})"));
  const auto stacks = stall_stacks(c);
  double sum = 0;
  for (const auto& s : stacks) sum += s.ms;
  CHECK(sum == doctest::Approx(300));
  const std::string folded = folded_stacks(stacks);
  CHECK(folded.find("<lambda>]]>\\x1b[31m (a,b&\"c\".py:3)") != std::string::npos);  // ';' would split frames
  CHECK(folded.find("[GC]") != std::string::npos);
  CHECK(folded.find("[blocked: read]") != std::string::npos);
  CHECK(folded.find("/lib/x.so+0x10") != std::string::npos);
  const std::string svg = flame_svg(flame_graph(stacks), {"Stall time: <x>", "", 1200});
  CHECK(svg.find("&lt;lambda&gt;]]&gt;") != std::string::npos);
  CHECK(svg.find("Stall time: &lt;x&gt;") != std::string::npos);
  CHECK(svg.find("<lambda>") == std::string::npos);
  CHECK(svg.find('\x1b') == std::string::npos);
  CHECK(svg.find("<script type=\"text/ecmascript\"><![CDATA[") != std::string::npos);
  CHECK(svg.rfind("</svg>\n") == svg.size() - 7);
  // An empty capture: a graph that says so.
  CHECK(flame_svg(flame_graph({}), {}).find("No stall time in this capture") != std::string::npos);
  CHECK(folded_stacks({}).empty());
}

TEST_CASE("report text: the culprit's top frames, Python then native, not only the innermost") {
  Capture c;
  c.stalls.push_back(json::parse(R"({"pid":1,"comm":"x","loop":"gevent","duration_ms":300,"cause":"cpu",
    "breakdown_ms":{"on_cpu":300,"blocked":0,"runqueue":0,"gc":0},
    "python_stacks":[{"samples":3,"frames":[{"function":"parse","file":"/app/p.py","line":7},
                                            {"function":"handle","file":"/app/h.py","line":20}]},
                     {"samples":1,"frames":[{"function":"handle","file":"/app/h.py","line":21}]}],
    "native_stack":[{"symbol":"memcpy","module":"/lib/libc.so.6","offset":1},
                    {"symbol":"_PyEval_EvalFrameDefault","module":"/usr/bin/python3.11","offset":2}],
    "exe":"/usr/bin/python3.11"})"));
  const std::string text = format_report_text(make_report(c));
  INFO(text);
  CHECK(text.find("Culprit stacks (innermost frame first)\n") != std::string::npos);
  CHECK(text.find("       225.0  75.0%       1  parse (/app/p.py:7)\n"
                  "                               <- handle (/app/h.py:20)\n"
                  "                             native: memcpy (/lib/libc.so.6)\n") != std::string::npos);
  CHECK(text.find("        75.0  25.0%       1  handle (/app/h.py:21)\n") != std::string::npos);
}
