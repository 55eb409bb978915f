// The control socket's request line: what each request asks for, and the
// error a client gets back for a bad one (parse_request never throws).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loopstall/control_protocol.hpp"

using namespace loopstall;

TEST_CASE("status and capture requests") {
  CHECK(parse_request(R"({"cmd":"status"})").cmd == ControlRequest::Cmd::Status);
  CHECK(parse_request(R"({"cmd":"status"})").error.empty());
  const ControlRequest r =
      parse_request(R"({"cmd":"capture","pids":[12,34],"threshold_ms":50,"all_loops":true,"format":"text"})");
  CHECK(r.error.empty());
  CHECK(r.cmd == ControlRequest::Cmd::Capture);
  CHECK(r.capture.pids == std::vector<std::uint32_t>{12, 34});
  CHECK(r.capture.all_loops);
  CHECK(r.capture.threshold_ms == 50);
  CHECK(r.capture.format == "text");
  // Defaults: every process, 100 ms, JSON Lines.
  const ControlRequest d = parse_request(R"({"cmd":"capture"})");
  CHECK(d.error.empty());
  CHECK(d.capture.pids.empty());
  CHECK_FALSE(d.capture.all_loops);
  CHECK_FALSE(d.capture.save);
  CHECK_FALSE(d.capture.coalesce);
  CHECK(d.capture.threshold_ms == 100);
  CHECK(d.capture.format == "json");
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

// What the client sends is what the server reads: both ends share
// control_protocol.hpp, so a field cannot be spelled differently on each.
TEST_CASE("a capture request round-trips from client to server") {
  ControlRequest sent;
  sent.cmd = ControlRequest::Cmd::Capture;
  sent.capture.pids = {42, 4194304};
  sent.capture.threshold_ms = 12.5;
  sent.capture.all_loops = true;
  sent.capture.format = "text";
  sent.capture.save = true;
  sent.capture.coalesce = true;
  const std::string line = request_line(sent);
  REQUIRE(line.back() == '\n');
  const ControlRequest got = parse_request(std::string_view(line).substr(0, line.size() - 1));
  CHECK(got.error.empty());
  CHECK(got.cmd == ControlRequest::Cmd::Capture);
  CHECK(got.capture.pids == sent.capture.pids);
  CHECK(got.capture.threshold_ms == 12.5);
  CHECK(got.capture.all_loops);
  CHECK(got.capture.format == "text");
  CHECK(got.capture.save);
  CHECK(got.capture.coalesce);
  ControlRequest plain;
  plain.cmd = ControlRequest::Cmd::Capture;
  CHECK(request_line(plain).find("coalesce") == std::string::npos);  // only when asked

  const std::string status = request_line({});
  CHECK(parse_request(std::string_view(status).substr(0, status.size() - 1)).cmd == ControlRequest::Cmd::Status);
  CHECK(parse_request(R"({"cmd":"capture","save":"yes"})").error == "save must be true or false");
  CHECK(parse_request(R"({"cmd":"capture","coalesce":1})").error == "coalesce must be true or false");
}

// Text is laid out in the daemon for the client's output: its terminal's
// width travels with the request; an old client's request (no field) is
// "not a terminal".
TEST_CASE("a capture request carries the client's terminal width") {
  ControlRequest sent;
  sent.cmd = ControlRequest::Cmd::Capture;
  sent.capture.format = "text";
  CHECK(request_line(sent).find("terminal_columns") == std::string::npos);
  CHECK(request_line(sent).find("ongoing_lines") == std::string::npos);
  sent.capture.terminal_columns = 132;
  sent.capture.ongoing_lines = true;
  const std::string line = request_line(sent);
  const ControlRequest got = parse_request(std::string_view(line).substr(0, line.size() - 1));
  CHECK(got.error.empty());
  CHECK(got.capture.terminal_columns == 132);
  CHECK(got.capture.ongoing_lines);
  const ControlRequest old = parse_request(R"({"cmd":"capture","format":"text"})");
  CHECK(old.error.empty());
  CHECK(old.capture.terminal_columns == 0);
  CHECK_FALSE(old.capture.ongoing_lines);
  CHECK(parse_request(R"({"cmd":"capture","terminal_columns":-1})").error == "terminal_columns must be 0..10000");
  CHECK(parse_request(R"({"cmd":"capture","terminal_columns":1e9})").error == "terminal_columns must be 0..10000");
  CHECK(parse_request(R"({"cmd":"capture","terminal_columns":"80"})").error == "terminal_columns must be 0..10000");
  CHECK(parse_request(R"({"cmd":"capture","ongoing_lines":1})").error == "ongoing_lines must be true or false");
}

TEST_CASE("the server's answer reads back as the client's verdict") {
  const std::string ok = answer_line({true, ""});
  CHECK(parse_answer(std::string_view(ok).substr(0, ok.size() - 1)).ok);
  const std::string no = answer_line({false, "threshold_ms must be a number"});
  const ControlAnswer a = parse_answer(std::string_view(no).substr(0, no.size() - 1));
  CHECK_FALSE(a.ok);
  CHECK(a.error == "threshold_ms must be a number");
  // Not an answer at all (a daemon of another program): the line is the error.
  const ControlAnswer junk = parse_answer("HTTP/1.1 400 Bad Request");
  CHECK_FALSE(junk.ok);
  CHECK(junk.error == "HTTP/1.1 400 Bad Request");
}
