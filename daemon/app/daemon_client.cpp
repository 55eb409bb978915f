// The client end of loopstalld's control socket: `loopstall capture` through
// the daemon and `loopstall status`.
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "daemon_client.hpp"
#include "loopstall/capture_file.hpp"
#include "loopstall/cli_common.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/control_server.hpp"
#include "loopstall/printable.hpp"
#include "loopstall/stall.hpp"

namespace loopstall {
namespace {

// Reads one '\n'-terminated line from a blocking fd (at most 64 KiB).
bool read_line(int fd, std::string& line, std::string& rest) {
  char buf[4096];
  while (true) {
    const auto nl = rest.find('\n');
    if (nl != std::string::npos) {
      line = rest.substr(0, nl);
      rest.erase(0, nl + 1);
      return true;
    }
    if (rest.size() > 65536) return false;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    rest.append(buf, static_cast<std::size_t>(n));
  }
}

// Where the daemon's lines go: capture-file records to the file, the rest
// (exactly what a standalone capture prints) to the output.
class LineRouter {
 public:
  LineRouter(OutputQueue& out, CaptureFileWriter* file) : out_(out), file_(file) {}
  void route(std::string_view line) {
    if (!line.empty() && line.front() == kSaveRecordMark) {
      line.remove_prefix(1);
      if (file_) file_->write(line), last_record_ = line;
    } else {
      out_.push(line);
    }
  }
  // Routes every whole line of buf and keeps the rest. A text status line
  // ends in '\r' (text_sink.cpp): it is a line too, shown as it comes.
  void route_lines(std::string& buf) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = buf.find_first_of("\n\r", start)) != std::string::npos; start = nl + 1)
      route(std::string_view(buf).substr(start, nl + 1 - start));
    buf.erase(0, start);
  }
  // Whether the daemon sent the capture's end record (it finished the
  // capture rather than dying in the middle).
  bool saw_end() const {
    const auto j = nlohmann::json::parse(last_record_, nullptr, false);
    return j.is_object() && j.value("record", std::string()) == "end";
  }

 private:
  OutputQueue& out_;
  CaptureFileWriter* file_;
  std::string last_record_;
};

}  // namespace

void capture_via_daemon(int fd, const CaptureArgs& a, OutputQueue& out) {
  // The file first: one that cannot be written stops the capture before it starts.
  std::unique_ptr<CaptureFileWriter> file;
  if (!a.save.empty())
    file = std::make_unique<CaptureFileWriter>(a.save, capture_meta(a.request.threshold_ms, a.command_line));
  ControlRequest req;
  req.cmd = ControlRequest::Cmd::Capture;
  req.capture = a.request;
  req.capture.save = file != nullptr;
  const std::string line = request_line(req);
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    throw std::runtime_error("writing to loopstalld's control socket failed");
  std::string first, rest;
  // A daemon that accepts but never answers must not hang the capture.
  timeval answer_timeout{5, 0}, none{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &answer_timeout, sizeof answer_timeout);
  if (!read_line(fd, first, rest))
    throw std::runtime_error("loopstalld did not answer on " + a.socket + " (use --standalone)");
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  const ControlAnswer ans = parse_answer(first);
  if (!ans.ok) throw std::runtime_error("loopstalld refused the capture: " + printable(ans.error));
  std::fprintf(stderr, "loopstall: ready: capturing through loopstalld (%s); threshold %g ms\n", a.socket.c_str(),
               a.request.threshold_ms);
  const auto& stop = install_stop_signals();
  const std::uint64_t t0 = monotonic_ns();
  bool shut = false;
  LineRouter router(out, file.get());
  router.route_lines(rest);
  while (true) {
    const bool over = a.duration_s > 0 && monotonic_ns() - t0 >= static_cast<std::uint64_t>(a.duration_s * 1e9);
    if (!shut && (stop.load() || over)) {
      shutdown(fd, SHUT_WR);  // the daemon reports what is pending and the summary
      shut = true;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    rest.append(buf, static_cast<std::size_t>(n));
    router.route_lines(rest);
  }
  if (!rest.empty()) router.route(rest);
  if (!file) return;
  if (!router.saw_end())
    throw std::runtime_error("loopstalld ended the capture before its end: " + a.save + " is incomplete");
  file->close();
}

nlohmann::json ask_daemon(const std::string& socket, const ControlRequest& request, std::chrono::milliseconds timeout,
                          std::size_t max_bytes) {
  const int fd = connect_control(socket);
  if (fd < 0 && (errno == EACCES || errno == EPERM))
    throw std::runtime_error("permission denied on " + socket +
                             ": run as root (loopstalld's control socket is root-only, mode 0600)");
  if (fd < 0) throw std::runtime_error("loopstalld is not running (nothing listens on " + socket + ")");
  const std::string req = request_line(request);
  bool sent = send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  std::string reply, why = sent ? "" : "it closed the connection";
  const std::uint64_t deadline = monotonic_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000ULL;
  while (why.empty() && reply.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    const std::uint64_t now = monotonic_ns();
    if (now >= deadline || poll(&p, 1, static_cast<int>((deadline - now) / 1'000'000) + 1) <= 0) {
      why = "timed out after " + std::to_string(timeout.count()) + " ms";
      break;
    }
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
      why = "it closed the connection";
    else if (reply.size() + static_cast<std::size_t>(n) > max_bytes)
      why = "the answer is longer than " + std::to_string(max_bytes) + " bytes";
    else
      reply.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  if (!why.empty()) throw std::runtime_error("no answer from loopstalld on " + socket + ": " + why);
  auto j = nlohmann::json::parse(reply.substr(0, reply.find('\n')), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw std::runtime_error("no valid answer from loopstalld on " + socket + ": not a JSON object");
  return j;
}

int status_command(const std::string& socket, const std::string& format) {
  nlohmann::json j;
  try {
    j = ask_daemon(socket, {}, std::chrono::seconds(5), 1u << 20);
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "loopstall: error: %s\n", e.what());
    return 1;
  }
  if (format == "json") {
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("loopstalld %s, up %.0f s, threshold %g ms, metrics on %s\n", j.value("version", "?").c_str(),
              j.value("uptime_s", 0.0), j.value("threshold_ms", 0.0), j.value("metrics_listen", "?").c_str());
  std::string kinds;
  for (LoopKind k : kLoopKinds) {
    const std::string name(to_string(k));
    kinds += (kinds.empty() ? "" : ", ") + name + " " + std::to_string(j["loops"].value(name, 0));
  }
  std::printf("watching %d processes, %d loops (%s)\n", j.value("watched_processes", 0), j.value("monitored_loops", 0),
              kinds.c_str());
  std::printf("stalls so far %llu, stalled now %d, lost events %llu\n",
              static_cast<unsigned long long>(j.value("stalls_total", 0ULL)), j.value("ongoing_stalls", 0),
              static_cast<unsigned long long>(j.value("lost_events", 0ULL)));
  std::printf("BPF programs attached %d\n", j["bpf"].value("programs_attached", 0));
  for (const auto& [name, n] : j["alerts_firing"].items())
    std::printf("alert %s: %d firing\n", name.c_str(), n.get<int>());
  return 0;
}

}  // namespace loopstall
