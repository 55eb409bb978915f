// to_json / JsonLinesSink: the stall-event object of the contract.
#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <string>

#include "loopstall/json_sink.hpp"
#include "loopstall/json_writer.hpp"
#include "sample_reports.hpp"

using namespace loopstall;
using nlohmann::ordered_json;

namespace {

// Mirrors stall-event.schema.json ("required" and the enums); the json_schema
// ctest checks the same output against the schema file itself.
const char* const kRequired[] = {"type",         "stall_id",      "pid",           "tid",          "comm",    "exe",
                                 "loop",         "start_unix_ns", "duration_ms",   "threshold_ms", "ongoing", "cause",
                                 "breakdown_ms", "syscalls",      "python_stacks", "native_stack"};
const std::set<std::string> kLoops = {"gevent", "asyncio", "uvloop", "eventlet", "twisted", "python", "epoll"};
const std::set<std::string> kCauses = {"cpu", "blocking_syscall", "runqueue", "gc"};

StallReport base_report() {
  StallReport r;
  r.stall_id = "101-1a2b";
  r.pid = 100;
  r.tid = 101;
  r.comm = "gunicorn";
  r.exe = "/usr/bin/python3.11";
  r.service = "gunicorn.service";
  r.loop = LoopKind::Gevent;
  r.python_version = "3.11";
  r.start_unix_ns = 1'700'000'000'123'456'789LL;
  r.duration_ms = 250.0;
  r.threshold_ms = 100;
  r.cause = Cause::BlockingSyscall;
  r.breakdown = {25, 225, 0, 5};
  r.syscalls = {{202, "futex", 225, 3}};
  return r;
}

std::string dump_like_sink(const ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Everything JsonLinesSink writes for `rs`, and how many writes it took.
std::string sink_output(const std::vector<StallReport>& rs, std::size_t* writes = nullptr) {
  std::string out;
  std::size_t n = 0;
  JsonLinesSink sink([&](std::string_view s) {
    out.append(s);
    ++n;
  });
  for (const auto& r : rs) sink.stall(r);
  if (writes) *writes = n;
  return out;
}

}  // namespace

TEST_CASE("to_json: every required key with its JSON type") {
  const ordered_json j = to_json(base_report());
  for (const char* k : kRequired) {
    CAPTURE(k);
    CHECK(j.contains(k));
  }
  CHECK(j.contains("service"));
  CHECK(j.contains("python_version"));
  CHECK(j["type"] == "stall");
  CHECK(j["stall_id"].is_string());
  CHECK(j["stall_id"] == "101-1a2b");
  CHECK(j["pid"].is_number_integer());
  CHECK(j["pid"] == 100);
  CHECK(j["tid"].is_number_integer());
  CHECK(j["tid"] == 101);
  CHECK(j["comm"] == "gunicorn");
  CHECK(j["exe"] == "/usr/bin/python3.11");
  CHECK(j["service"] == "gunicorn.service");
  CHECK(j["loop"] == "gevent");
  CHECK(j["python_version"].is_string());
  CHECK(j["python_version"] == "3.11");
  CHECK(j["start_unix_ns"].is_number_integer());
  CHECK(j["start_unix_ns"].get<std::int64_t>() == 1'700'000'000'123'456'789LL);
  CHECK(j["duration_ms"].is_number());
  CHECK(j["threshold_ms"].is_number());
  CHECK(j["ongoing"].is_boolean());
  CHECK(j["ongoing"] == false);
  CHECK(j["cause"] == "blocking_syscall");
  REQUIRE(j["breakdown_ms"].is_object());
  for (const char* k : {"on_cpu", "blocked", "runqueue", "gc"}) {
    CAPTURE(k);
    CHECK(j["breakdown_ms"][k].is_number());
  }
  CHECK(j["breakdown_ms"]["blocked"].get<double>() == 225.0);
  CHECK(j["breakdown_ms"]["gc"].get<double>() == 5.0);
  REQUIRE(j["syscalls"].is_array());
  REQUIRE(j["syscalls"].size() == 1);
  const auto& sc = j["syscalls"][0];
  CHECK(sc["name"] == "futex");
  CHECK(sc["nr"].is_number_integer());
  CHECK(sc["nr"] == 202);
  CHECK(sc["ms"].is_number());
  CHECK(sc["count"].is_number_integer());
  CHECK(sc["count"] == 3);
  CHECK(j["python_stacks"].is_array());
  CHECK(j["python_stacks"].empty());
  CHECK(j["native_stack"].is_array());
  CHECK(j["native_stack"].empty());
}

TEST_CASE("to_json: nulls and enums") {
  StallReport r = base_report();
  r.python_version = std::nullopt;
  r.ongoing = true;
  r.python_stacks = {{7, {{"f", "a.py", 12}, {"g", "b.py", std::nullopt}}}};
  r.native_stack = {{"", "/usr/lib/libc.so.6", 0xdeadbeefULL}};
  const ordered_json j = to_json(r);
  CHECK(j["python_version"].is_null());
  CHECK(j["ongoing"] == true);
  REQUIRE(j["python_stacks"].size() == 1);
  const auto& st = j["python_stacks"][0];
  CHECK(st["samples"].is_number_integer());
  CHECK(st["samples"] == 7);
  REQUIRE(st["frames"].size() == 2);
  CHECK(st["frames"][0]["function"] == "f");  // innermost first, order kept
  CHECK(st["frames"][0]["file"] == "a.py");
  CHECK(st["frames"][0]["line"].is_number_integer());
  CHECK(st["frames"][0]["line"] == 12);
  CHECK(st["frames"][1]["line"].is_null());
  REQUIRE(j["native_stack"].size() == 1);
  CHECK(j["native_stack"][0]["symbol"] == "");
  CHECK(j["native_stack"][0]["module"] == "/usr/lib/libc.so.6");
  CHECK(j["native_stack"][0]["offset"].is_number_integer());
  CHECK(j["native_stack"][0]["offset"].get<std::uint64_t>() == 0xdeadbeefULL);

  for (LoopKind k : kLoopKinds) {
    r.loop = k;
    CHECK(kLoops.count(to_json(r)["loop"].get<std::string>()) == 1);
  }
  std::set<std::string> causes;
  for (Cause c : {Cause::Cpu, Cause::BlockingSyscall, Cause::Runqueue, Cause::Gc}) {
    r.cause = c;
    const auto s = to_json(r)["cause"].get<std::string>();
    CHECK(kCauses.count(s) == 1);
    causes.insert(s);
  }
  CHECK(causes.size() == 4);  // each cause has its own name
}

TEST_CASE("to_json: times rounded to microseconds") {
  StallReport r = base_report();
  r.duration_ms = 123.4567891;
  r.breakdown = {100.0004999, 23.4562892, 0.0000004, 99.9995001};
  r.syscalls = {{202, "futex", 23.4562892, 1}};
  const ordered_json j = to_json(r);
  CHECK(j["duration_ms"].get<double>() == doctest::Approx(123.457).epsilon(1e-12));
  CHECK(j["breakdown_ms"]["on_cpu"].get<double>() == doctest::Approx(100.0).epsilon(1e-12));
  CHECK(j["breakdown_ms"]["blocked"].get<double>() == doctest::Approx(23.456).epsilon(1e-12));
  CHECK(j["breakdown_ms"]["runqueue"].get<double>() == 0.0);
  CHECK(j["breakdown_ms"]["gc"].get<double>() == doctest::Approx(100.0).epsilon(1e-12));
  CHECK(j["syscalls"][0]["ms"].get<double>() == doctest::Approx(23.456).epsilon(1e-12));
  // Printed short, not with the nanosecond digits.
  const std::string s = dump_like_sink(j);
  CHECK(s.find("\"duration_ms\":123.457,") != std::string::npos);
  CHECK(s.find("4567891") == std::string::npos);
  CHECK(s.find("2892") == std::string::npos);
}

TEST_CASE("stall_json: invalid UTF-8 from other processes") {
  StallReport r = base_report();
  r.comm = "bad\xff\xfe";
  r.exe = "/usr/bin/\xc3";  // truncated sequence
  r.python_stacks = {{1, {{"f\x80", "x.py", 1}}}};
  std::string s;
  CHECK_NOTHROW(s = stall_json(r));
  CHECK(s.find("\"comm\":\"bad\xef\xbf\xbd\xef\xbf\xbd\"") != std::string::npos);  // U+FFFD each
  // The result parses back strictly, and so does its tree.
  ordered_json back;
  CHECK_NOTHROW(back = ordered_json::parse(s));
  CHECK(back["pid"] == 100);
  CHECK_NOTHROW((void)to_json(r).dump());
}

namespace {

// What the sink wrote before it wrote the line directly: an nlohmann tree,
// dumped. The direct writer must give the same bytes.
std::string reference_dump(const StallReport& r) {
  auto us = [](double ms) { return std::round(ms * 1000.0) / 1000.0; };
  ordered_json j;
  j["type"] = "stall";
  j["stall_id"] = r.stall_id;
  j["pid"] = r.pid;
  j["tid"] = r.tid;
  j["comm"] = r.comm;
  j["exe"] = r.exe;
  j["service"] = r.service;
  j["loop"] = std::string(to_string(r.loop));
  j["python_version"] = r.python_version ? ordered_json(*r.python_version) : ordered_json(nullptr);
  j["start_unix_ns"] = r.start_unix_ns;
  if (r.start_estimated) j["start_estimated"] = true;
  j["duration_ms"] = us(r.duration_ms);
  j["threshold_ms"] = r.threshold_ms;
  j["ongoing"] = r.ongoing;
  j["cause"] = std::string(to_string(r.cause));
  j["breakdown_ms"] = {{"on_cpu", us(r.breakdown.on_cpu_ms)},
                       {"blocked", us(r.breakdown.blocked_ms)},
                       {"runqueue", us(r.breakdown.runqueue_ms)},
                       {"gc", us(r.breakdown.gc_ms)}};
  ordered_json sc = ordered_json::array();
  for (const auto& x : r.syscalls) sc.push_back({{"name", x.name}, {"nr", x.nr}, {"ms", us(x.ms)}, {"count", x.count}});
  j["syscalls"] = std::move(sc);
  ordered_json stacks = ordered_json::array();
  for (const auto& st : r.python_stacks) {
    ordered_json frames = ordered_json::array();
    for (const auto& f : st.frames)
      frames.push_back({{"function", f.function},
                        {"file", f.file},
                        {"line", f.line ? ordered_json(*f.line) : ordered_json(nullptr)}});
    stacks.push_back({{"samples", st.samples}, {"frames", std::move(frames)}});
  }
  j["python_stacks"] = std::move(stacks);
  ordered_json native = ordered_json::array();
  for (const auto& f : r.native_stack)
    native.push_back({{"symbol", f.symbol}, {"module", f.module}, {"offset", f.offset}});
  j["native_stack"] = std::move(native);
  if (const auto& c = r.coalesced)
    j["coalesced"] = {{"count", c->count},
                      {"total_ms", us(c->total_ms)},
                      {"max_ms", us(c->max_ms)},
                      {"first_start_unix_ns", c->first_start_unix_ns},
                      {"last_start_unix_ns", c->last_start_unix_ns},
                      {"window_s", c->window_s}};
  return dump_like_sink(j);
}

}  // namespace

TEST_CASE("stall_json: the same bytes as the nlohmann tree it replaced") {
  std::vector<StallReport> rs = test::sample_reports();
  StallReport odd = base_report();
  odd.comm = "tab\there \"q\" back\\slash \x01\x1f\x7f";
  odd.exe = "/opt/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80";  // valid UTF-8, 2 to 4 bytes
  odd.service = "bad\xff\xc3(\xe2\x82";                        // invalid and truncated
  odd.start_unix_ns = -5;
  odd.start_estimated = true;
  odd.duration_ms = 1e-7;
  odd.threshold_ms = 1e17;
  odd.breakdown = {0.1 + 0.2, 1.0 / 3.0, 123456789.123456, -0.0};
  odd.syscalls = {{-1, "", 0.0005, 0}, {0, "read", 2.5e-4, UINT64_MAX}};
  odd.python_stacks = {{0, {}},
                       {UINT64_MAX,
                        {{"", "", 0},
                         {"<module>", "/a b/\n.py", -1},
                         {"f", "g", std::nullopt},
                         {"min", "m.py", INT_MIN},
                         {"max", "m.py", INT_MAX}}}};
  odd.native_stack = {{"", "", 0}, {"_Z3foov+0x10", "[vdso]", UINT64_MAX}};
  rs.push_back(odd);
  StallReport nan = base_report();
  nan.duration_ms = std::numeric_limits<double>::quiet_NaN();
  nan.threshold_ms = std::numeric_limits<double>::infinity();
  rs.push_back(nan);
  for (const auto& r : rs) {
    CAPTURE(r.stall_id);
    CHECK(stall_json(r) == reference_dump(r));
  }
  // The sink writes that, one line per report.
  std::size_t writes = 0;
  std::string want;
  for (const auto& r : rs) want += reference_dump(r) + "\n";
  CHECK(sink_output(rs, &writes) == want);
  CHECK(writes == rs.size());
}

TEST_CASE("JsonWriter::plain: the word-at-a-time check agrees with the byte-by-byte rule") {
  auto by_byte = [](std::string_view s) {
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
    }
    return true;
  };
  // Every byte value at every place of a word, next to every kind of
  // neighbour (borrows and carries cross bytes).
  std::size_t checked = 0;
  std::string first_wrong;
  for (const char fill : {'a', ' ', '~', '!', '#', '[', ']'}) {
    for (std::size_t len = 0; len <= 17; ++len) {
      std::string s(len, fill);
      CHECK(JsonWriter::plain(s));
      for (std::size_t at = 0; at < len; ++at) {
        for (int b = 0; b < 256; ++b, ++checked) {
          s[at] = static_cast<char>(b);
          if (JsonWriter::plain(s) != by_byte(s) && first_wrong.empty()) first_wrong = s;
        }
        s[at] = fill;
      }
    }
  }
  CHECK(checked == 7 * 153 * 256);
  CHECK(first_wrong.empty());
}

TEST_CASE("JsonLinesSink: one parseable object per line") {
  std::vector<StallReport> rs = test::sample_reports();
  REQUIRE(rs.size() >= 6);
  std::size_t writes = 0;
  const std::string out = sink_output(rs, &writes);
  CHECK(writes == rs.size());  // a whole line per write: readers never see half a line
  REQUIRE_FALSE(out.empty());
  CHECK(out.back() == '\n');
  std::size_t lines = 0, start = 0;
  for (std::size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1, ++lines) {
    const std::string line = out.substr(start, nl - start);
    CAPTURE(line);
    ordered_json j;
    REQUIRE_NOTHROW(j = ordered_json::parse(line));
    REQUIRE(j.is_object());
    CHECK(j["stall_id"] == rs[lines].stall_id);
    CHECK(j["type"] == "stall");
    for (const char* k : kRequired) CHECK(j.contains(k));
    CHECK(kLoops.count(j["loop"].get<std::string>()) == 1);
    CHECK(kCauses.count(j["cause"].get<std::string>()) == 1);
    CHECK(j["pid"].get<std::int64_t>() >= 1);
    CHECK(j["tid"].get<std::int64_t>() >= 1);
    CHECK(j["duration_ms"].get<double>() >= 0);
    CHECK((j["python_version"].is_null() || j["python_version"].is_string()));
  }
  CHECK(lines == rs.size());
  CHECK(out.find('\n') == out.find("}\n") + 1);  // no pretty-printing
}

TEST_CASE("JsonLinesSink with a byte budget: over it, stalls are still written, without their stacks") {
  // A process that chose 4 KiB function and file names and a 64-frame stack: ~0.5 MB a line.
  StallReport big = test::sample_reports()[0];
  big.exe = "/" + std::string(5000, 'e');
  PyStack st{1, {}};
  for (int i = 0; i < 64; ++i) st.frames.push_back({std::string(4096, 'f'), std::string(4096, 'p'), i});
  big.python_stacks = {st};
  big.native_stack = {{"deep_c", "/lib/libx.so", 16}};
  std::uint64_t now = 1'000'000'000;
  std::vector<std::string> lines;
  const std::uint64_t rate = 64 * 1024;  // burst: 30 s of it, 1.9 MiB
  JsonLinesSink sink([&](std::string_view l) { lines.emplace_back(l); }, EventLogBudget{rate}, [&] { return now; });
  std::size_t bytes = 0;
  for (int i = 0; i < 20; ++i) {  // 20 in one instant: the burst takes three
    big.stall_id = "big-" + std::to_string(i);
    sink.stall(big);
    bytes += lines.back().size();
  }
  REQUIRE(lines.size() == 20);  // every stall written
  CHECK(sink.stacks_omitted() == 17);
  CHECK(bytes <= rate * EventLogBudget::kBudgetBurstS + 17 * 2048);
  const auto full = ordered_json::parse(lines[0]);
  CHECK(full["python_stacks"][0]["frames"].size() == 64);
  CHECK_FALSE(full.contains("stacks_omitted"));
  const auto lean = ordered_json::parse(lines[19]);
  CHECK(lean["stall_id"] == "big-19");
  CHECK(lean["stacks_omitted"] == true);
  CHECK(lean["python_stacks"].empty());
  CHECK(lean["native_stack"].empty());
  CHECK(lean["exe"].get<std::string>().size() == kLeanExeBytes);
  CHECK(lean["duration_ms"] == full["duration_ms"]);
  CHECK(lean["cause"] == full["cause"]);
  CHECK(lines[19].size() < 2048);
  // The budget refills: 10 s later a small stall fits whole, and so does a big one after 30 s.
  now += 10'000'000'000ULL;
  StallReport small = test::sample_reports()[0];
  sink.stall(small);
  CHECK_FALSE(ordered_json::parse(lines.back()).contains("stacks_omitted"));
  now += 30'000'000'000ULL;
  sink.stall(big);
  CHECK(ordered_json::parse(lines.back())["python_stacks"][0]["frames"].size() == 64);
  // Without a budget (a capture's own output) nothing is ever lean.
  std::vector<std::string> plain;
  JsonLinesSink unlimited([&](std::string_view l) { plain.emplace_back(l); });
  for (int i = 0; i < 20; ++i) unlimited.stall(big);
  CHECK(unlimited.stacks_omitted() == 0);
  CHECK(std::none_of(plain.begin(), plain.end(),
                     [](const std::string& l) { return l.find("stacks_omitted") != std::string::npos; }));
}

TEST_CASE("sample reports cover the shapes the schema test relies on") {
  const std::vector<StallReport> rs = test::sample_reports();
  bool ongoing = false, final = false, null_version = false, stacks = false, native = false, same_id = false;
  for (const auto& r : rs) {
    ongoing |= r.ongoing;
    final |= !r.ongoing;
    null_version |= !r.python_version;
    stacks |= !r.python_stacks.empty();
    native |= !r.native_stack.empty();
    for (const auto& o : rs) same_id |= &o != &r && o.stall_id == r.stall_id && o.ongoing != r.ongoing;
  }
  CHECK(ongoing);
  CHECK(final);
  CHECK(null_version);
  CHECK(stacks);
  CHECK(native);
  CHECK(same_id);
}
