// Capture files and `loopstall report`: a round trip, hostile files refused
// with a clear error, and the rankings a person reads.
#include <doctest/doctest.h>
#include <zlib.h>

#include <fstream>

#include "loopstall/capture_file.hpp"
#include "loopstall/report.hpp"
#include "test_util.hpp"

using namespace loopstall;
using loopstall::test::TempDir;

namespace {

StallReport stall(const std::string& id, std::uint32_t pid, double ms, Cause cause, std::vector<PyStack> py,
                  std::vector<NativeFrame> native, bool ongoing = false) {
  StallReport r;
  r.stall_id = id;
  r.pid = r.tid = pid;
  r.comm = "python3.11";
  r.exe = "/usr/bin/python3.11";
  r.service = "api.service";
  r.loop = LoopKind::Gevent;
  r.duration_ms = ms;
  r.threshold_ms = 100;
  r.ongoing = ongoing;
  r.cause = cause;
  if (cause == Cause::BlockingSyscall) {
    r.breakdown.blocked_ms = ms;
    r.syscalls = {{230, "clock_nanosleep", ms, 1}};
  } else {
    r.breakdown.on_cpu_ms = ms;
  }
  r.python_stacks = std::move(py);
  r.native_stack = std::move(native);
  return r;
}

// Two culprits in one service: a CPU hog (two stacks of it) and a blocking C call.
std::string write_two_culprits(const TempDir& dir) {
  const std::string path = (dir.path() / "c.lsc").string();
  CaptureMeta meta;
  meta.loopstall_version = "test";
  meta.host = "h1";
  meta.threshold_ms = 100;
  meta.start_unix_ns = 1'000'000'000'000;
  CaptureFileSink sink(path, meta);
  const PyFrame hog{"burn_cpu", "/app/hog.py", 17}, handler{"handle", "/app/app.py", 5},
      sleeper{"ctypes_usleep", "/app/c.py", 22};
  sink.stall(
      stall("1-a", 100, 300, Cause::Cpu, {{3, {hog, handler}}, {1, {handler}}}, {{"", "/usr/bin/python3.11", 0x1234}}));
  sink.stall(stall("1-b", 100, 500, Cause::BlockingSyscall, {{50, {sleeper}}},
                   {{"clock_nanosleep", "/lib/libc.so.6", 849155}, {"usleep", "/lib/libc.so.6", 1045140}}));
  // Ongoing reports: one finished later (only its final counts), one still in progress at the end.
  sink.stall(stall("1-c", 100, 150, Cause::Cpu, {{1, {hog}}}, {}, true));
  sink.stall(stall("1-c", 100, 200, Cause::Cpu, {{2, {hog}}}, {}));
  sink.stall(stall("2-d", 200, 120, Cause::BlockingSyscall, {{1, {sleeper}}}, {}, true));
  sink.stall(stall("2-d", 200, 900, Cause::BlockingSyscall, {{9, {sleeper}}}, {}, true));
  Summary s;
  s.lost_events = 3;
  s.processes[100].comm = "python3.11";
  s.processes[100].loop = LoopKind::Gevent;
  s.processes[100].iterations = 2000;
  s.processes[100].hist[8] = 1990;
  s.processes[100].hist[19] = 10;
  sink.finish(s);
  return path;
}

std::string gzip_text(const std::string& text) {
  TempDir d;
  const std::string p = (d.path() / "x.gz").string();
  gzFile gz = gzopen(p.c_str(), "wb");
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string error_of(const std::string& path) {
  try {
    read_capture(path);
  } catch (const CaptureError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("capture file: round trip") {
  TempDir dir;
  const Capture c = read_capture(write_two_culprits(dir));
  CHECK(c.meta.version == kCaptureFormatVersion);
  CHECK(c.meta.host == "h1");
  CHECK(c.meta.threshold_ms == 100);
  CHECK(c.meta.end_unix_ns >= c.meta.start_unix_ns);
  CHECK(c.lost_events == 3);
  // Finals, then the last report of the stall still in progress.
  REQUIRE(c.stalls.size() == 4);
  CHECK(c.stalls[2]["stall_id"] == "1-c");
  CHECK(c.stalls[2]["duration_ms"] == 200.0);
  CHECK(c.stalls[3]["stall_id"] == "2-d");
  CHECK(c.stalls[3]["ongoing"] == true);
  CHECK(c.stalls[3]["duration_ms"] == 900.0);
  REQUIRE(c.loops.size() == 1);
  CHECK(c.loops[0].iterations == 2000);
  CHECK(c.loops[0].hist[19] == 10);
}

TEST_CASE("report: ranks loops, causes, culprits and syscalls by stalled time") {
  TempDir dir;
  const Report r = make_report(read_capture(write_two_culprits(dir)));
  CHECK(r.stalls == 3);
  CHECK(r.in_progress == 1);
  CHECK(r.stalled_ms == doctest::Approx(1900));
  REQUIRE(r.loops.size() == 2);
  CHECK(r.loops[0].pid == 100);  // 1000 ms vs 900 ms
  CHECK(r.loops[0].stalled_ms == doctest::Approx(1000));
  CHECK(r.loops[0].iterations == 2000);
  CHECK(r.loops[0].p50_ms == doctest::Approx(0.256));
  CHECK(r.loops[1].in_progress == 1);
  REQUIRE(r.causes.size() == 2);
  CHECK(r.causes[0].name == "blocking_syscall");
  CHECK(r.causes[0].ms == doctest::Approx(1400));
  // ctypes_usleep: 500 + 900 ms self; burn_cpu: 3/4 of 300 + 200 ms self; handle: inclusive 300 ms.
  REQUIRE(r.python_functions.size() == 3);
  CHECK(r.python_functions[0].name == "ctypes_usleep (/app/c.py)");
  CHECK(r.python_functions[0].self_ms == doctest::Approx(1400));
  CHECK(r.python_functions[1].name == "burn_cpu (/app/hog.py)");
  CHECK(r.python_functions[1].self_ms == doctest::Approx(425));
  CHECK(r.python_functions[2].name == "handle (/app/app.py)");
  CHECK(r.python_functions[2].ms == doctest::Approx(300));
  CHECK(r.python_functions[2].self_ms == doctest::Approx(75));
  REQUIRE(r.native_symbols.size() == 3);
  CHECK(r.native_symbols[0].name == "clock_nanosleep (/lib/libc.so.6)");
  CHECK(r.native_symbols[1].name == "/usr/bin/python3.11+0x1234");  // unnamed: module+offset
  REQUIRE(r.syscalls.size() == 1);
  CHECK(r.syscalls[0].name == "clock_nanosleep");
  CHECK(r.syscalls[0].ms == doctest::Approx(1400));

  const std::string text = format_report_text(r);
  CHECK(text.find("1 still in progress") != std::string::npos);
  CHECK(text.find("ctypes_usleep (/app/c.py)") < text.find("burn_cpu (/app/hog.py)"));
  const auto j = report_to_json(r);
  CHECK(j["python_functions"][0]["self_share"].get<double>() == doctest::Approx(1400.0 / 1900));
  // The culprit stacks the text shows, in the JSON too: most stalled time first, innermost frame first.
  REQUIRE(j["stacks"].size() == r.stacks.size());
  REQUIRE(!r.stacks.empty());
  // 2-d: 900 ms in ctypes_usleep with no native stack; 1-b: 500 ms in it over libc's usleep.
  CHECK(j["stacks"][0]["python"] == nlohmann::json::array({"ctypes_usleep (/app/c.py:22)"}));
  CHECK(j["stacks"][0]["native"].empty());
  CHECK(j["stacks"][0]["ms"].get<double>() == doctest::Approx(900));
  CHECK(j["stacks"][0]["share"].get<double>() == doctest::Approx(900.0 / 1900));
  CHECK(j["stacks"][0]["stalls"] == 1);
  CHECK(j["stacks"][1]["native"][0] == "clock_nanosleep (/lib/libc.so.6)");
  CHECK(j["stacks"][1]["ms"].get<double>() == doctest::Approx(500));
}

TEST_CASE("capture file: hostile or damaged files are refused with a clear error") {
  TempDir dir;
  const std::string good = write_two_culprits(dir);
  std::ifstream in(good, std::ios::binary);
  const std::string bytes(std::istreambuf_iterator<char>(in), {});
  auto file = [&](const std::string& name, const std::string& content) {
    dir.write(name, content);
    return (dir.path() / name).string();
  };
  CHECK(error_of((dir.path() / "missing").string()).find("cannot open") != std::string::npos);
  CHECK(error_of(dir.path().string()).find("not a regular file") != std::string::npos);
  CHECK(error_of(file("empty", "")).find("not a loopstall capture") != std::string::npos);
  CHECK(error_of(file("plain", "hello\n")).find("not a loopstall capture") != std::string::npos);
  // Cut short: the gzip stream or the record structure ends early.
  for (std::size_t cut : {bytes.size() / 3, bytes.size() / 2, bytes.size() - 9}) {
    const std::string e = error_of(file("cut" + std::to_string(cut), bytes.substr(0, cut)));
    CHECK_MESSAGE(e.find(good.empty() ? "" : "capture file") != std::string::npos, e);
    CHECK_MESSAGE((e.find("truncated") != std::string::npos || e.find("corrupted") != std::string::npos), e);
  }
  // Flipped bytes in the compressed data: refused (CRC or inflate error), never a crash.
  for (std::size_t at = 12; at < bytes.size(); at += 37) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    const std::string e = error_of(file("flip", bad));
    CHECK_MESSAGE(!e.empty(), "flipped byte at " << at << " was accepted");
  }
  const std::string header = R"({"record":"header","format":"loopstall-capture","version":)";
  const std::string e2 = error_of(file("newer", gzip_text(header + "99,\"threshold_ms\":1,\"start_unix_ns\":1}\n")));
  CHECK(e2.find("version 99") != std::string::npos);
  CHECK(e2.find("newer loopstall") != std::string::npos);
  const std::string noend = header + "1,\"threshold_ms\":1,\"start_unix_ns\":1}\n";
  CHECK(error_of(file("noend", gzip_text(noend))).find("no end record") != std::string::npos);
  CHECK(error_of(file("badrec", gzip_text(noend + "[1,2]\n"))).find("not a JSON object") != std::string::npos);
  CHECK(error_of(file("badstall", gzip_text(noend + R"({"record":"stall","event":{"pid":1}})" + "\n")))
            .find("without a stall event") != std::string::npos);
  CHECK(error_of(file("badhist", gzip_text(noend + R"({"record":"loop","pid":1,"comm":"x","loop":"gevent",)" +
                                           R"("iterations":1,"hist_log2_us":[1]})" + "\n")))
            .find("histogram") != std::string::npos);
  CHECK(error_of(file("types", gzip_text(noend + R"({"record":"end","end_unix_ns":"x","lost_events":0})" + "\n")))
            .find("wrong type") != std::string::npos);
}

TEST_CASE("capture file: values out of their range or type are refused, not cast (fuzz/regressions/capture_file)") {
  TempDir dir;
  const std::string header = R"({"record":"header","format":"loopstall-capture","version":1,"threshold_ms":1,)";
  const std::string end = R"({"record":"end","end_unix_ns":2,"lost_events":0})"
                          "\n";
  auto error_in = [&](const std::string& name, const std::string& text) {
    dir.write(name, gzip_text(text));
    return error_of((dir.path() / name).string());
  };
  const std::string hdr = header + "\"start_unix_ns\":1}\n";
  // Before: json::get<T>() cast these (undefined behaviour) or threw a json type_error past CaptureError.
  CHECK(error_in("v", header + R"("version":1e10,"start_unix_ns":1})" + "\n" + end).find("wrong type") !=
        std::string::npos);
  CHECK(error_in("s", header + R"("start_unix_ns":1e300})" + "\n" + end).find("\"start_unix_ns\" has the wrong type") !=
        std::string::npos);
  CHECK(error_in("h", header + R"("start_unix_ns":1,"host":5})" + "\n" + end).find("\"host\" has the wrong type") !=
        std::string::npos);
  CHECK(error_in("c", header + R"("start_unix_ns":1,"command_line":5})" + "\n" + end).find("\"command_line\"") !=
        std::string::npos);
  CHECK(error_in("f", R"({"record":"header","format":5})"
                      "\n")
            .find("not a loopstall capture") != std::string::npos);
  CHECK(error_in("p", hdr + R"({"record":"stall","event":{"pid":1e300,"duration_ms":150}})" + "\n" + end)
            .find("pid or duration_ms") != std::string::npos);
  CHECK(error_in("n", hdr + R"({"record":"stall","event":{"pid":-1,"duration_ms":150}})" + "\n" + end)
            .find("pid or duration_ms") != std::string::npos);
  CHECK(error_in("o", hdr + R"({"record":"stall","event":{"pid":1,"duration_ms":150,"ongoing":"yes"}})" + "\n" + end)
            .find("\"ongoing\" is not a boolean") != std::string::npos);
  CHECK(error_in("l", hdr + R"({"record":"loop","pid":1e20,"comm":"c","loop":"gevent","iterations":1,)" +
                          R"("hist_log2_us":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]})" +
                          "\n" + end)
            .find("\"pid\" has the wrong type") != std::string::npos);
  CHECK(error_in("b", hdr + R"({"record":"loop","pid":1,"comm":"c","loop":"gevent","iterations":1,)" +
                          R"("hist_log2_us":[-1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]})" +
                          "\n" + end)
            .find("\"hist_log2_us\" has the wrong type") != std::string::npos);

  // Accepted files whose values would overflow: read, and reported without undefined behaviour.
  dir.write("wide", gzip_text(header + R"("start_unix_ns":-9000000000000000000})" + "\n" +
                              R"({"record":"stall","event":{"pid":7,"duration_ms":150,"loop":"ge\u001b[2Jvent",)" +
                              R"("native_stack":[{"symbol":"","module":"m","offset":-1}]}})" + "\n" +
                              R"({"record":"end","end_unix_ns":9000000000000000000,"lost_events":0})" + "\n"));
  const Capture wide = read_capture((dir.path() / "wide").string());
  CHECK(wide.duration_s() == doctest::Approx(1.8e10));
  const Report r = make_report(wide);
  REQUIRE(r.native_symbols.size() == 1);
  CHECK(r.native_symbols[0].name == "m+0x0");  // a negative offset is no offset
  // The loop name comes from the file too: no raw escape sequence reaches the terminal.
  CHECK(format_report_text(r).find('\x1b') == std::string::npos);

  // Nesting as deep as the file likes (1 M levels in 2 KiB of gzip): read without recursing.
  const std::size_t depth = 1'000'000;
  dir.write("deep", gzip_text(hdr + R"({"record":"stall","event":{"pid":1,"duration_ms":150,"x":)" +
                              std::string(depth, '[') + std::string(depth, ']') + "}}\n" + end));
  CHECK(read_capture((dir.path() / "deep").string()).stalls.size() == 1);
}
