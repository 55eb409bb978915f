// The control socket's request line: what each request asks for, and the
// error a client gets back for a bad one (parse_request never throws).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "loopstall/control.hpp"

using namespace loopstall;

TEST_CASE("status and capture requests") {
  CHECK(parse_request(R"({"cmd":"status"})").cmd == ControlRequest::Cmd::Status);
  CHECK(parse_request(R"({"cmd":"status"})").error.empty());
  const ControlRequest r =
      parse_request(R"({"cmd":"capture","pids":[12,34],"threshold_ms":50,"all_loops":true,"format":"text"})");
  CHECK(r.error.empty());
  CHECK(r.cmd == ControlRequest::Cmd::Capture);
  CHECK(r.selection.pids == std::set<std::uint32_t>{12, 34});
  CHECK(r.selection.all_loops);
  CHECK(r.threshold_ms == 50);
  CHECK(r.format == "text");
  // Defaults: every process, 100 ms, JSON Lines.
  const ControlRequest d = parse_request(R"({"cmd":"capture"})");
  CHECK(d.error.empty());
  CHECK(d.selection.pids.empty());
  CHECK_FALSE(d.selection.all_loops);
  CHECK(d.threshold_ms == 100);
  CHECK(d.format == "json");
}

TEST_CASE("bad requests are errors for the client") {
  CHECK(parse_request(R"({"cmd":"reboot"})").error == "unknown cmd 'reboot'");
  CHECK(parse_request(R"({"cmd":"capture","format":"xml"})").error == "format must be json or text");
  CHECK(parse_request("not json").error == "the request is not a JSON object");
  CHECK(parse_request(R"(["cmd","status"])").error == "the request is not a JSON object");
  CHECK(parse_request(R"({"cmd":1})").error == "cmd must be a string");
  CHECK(parse_request(R"({"cmd":"capture","pids":7})").error == "pids must be an array of process ids");
  for (const char* pids : {"[1e300]", "[1.5]", "[-1]", "[0]", "[4194305]", R"(["1"])"}) {
    CAPTURE(pids);
    CHECK(parse_request(std::string(R"({"cmd":"capture","pids":)") + pids + "}").error ==
          "pids must be process ids (1..4194304)");
  }
  CHECK_FALSE(parse_request(R"({"cmd":"capture","threshold_ms":0})").error.empty());
  CHECK_FALSE(parse_request(R"({"cmd":"capture","threshold_ms":1e300})").error.empty());
}

TEST_CASE("a reply quoting non-UTF-8 request bytes is valid JSON") {
  const std::string line = control_line({{"ok", false}, {"error", std::string("unknown cmd '\xff\xfe'")}});
  REQUIRE(line.back() == '\n');
  const auto j = nlohmann::json::parse(line);
  CHECK(j["error"].get<std::string>().find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD
}
