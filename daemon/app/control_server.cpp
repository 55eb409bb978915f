#include "loopstall/control_server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "loopstall/capture_file.hpp"
#include "loopstall/capture_session.hpp"
#include "loopstall/clock.hpp"
#include "loopstall/control_protocol.hpp"

namespace loopstall {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxRequest = 64 * 1024;
constexpr std::size_t kMaxBacklog = 8u << 20;  // unread output before a client is dropped
// Each capture client has a correlator the detector feeds: bounded.
constexpr std::size_t kMaxClients = 64;
// A request line, and the answer to a finished one, get this long.
constexpr std::uint64_t kClientTimeoutNs = 5'000'000'000ULL;
// Reads per client per poll(): a client that keeps sending cannot hold the
// detector's thread.
constexpr int kMaxReadsPerPoll = 16;

std::string error_line(const std::string& why) {
  return answer_line({false, why});
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

struct ControlServer::Client {
  int fd = -1;
  std::string in, out;
  bool finishing = false, closed = false;
  std::uint64_t accepted_ns = 0, finishing_ns = 0;
  std::unique_ptr<CaptureOutput> output;
  std::unique_ptr<CaptureSession> session;
  bool capturing() const { return session && session->running(); }
};

ControlServer::ControlServer(const std::string& path, Detector& det, std::function<nlohmann::json()> status)
    : path_(path), det_(det), status_(std::move(status)) {
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw sys_error("creating " + dir);
  }
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw sys_error("control socket");
  const sockaddr_un addr = unix_address(path);
  // A stale socket of a previous run: replace it only if nobody answers.
  if (const int other = connect_control(path); other >= 0) {
    close(other);
    throw std::runtime_error("another loopstalld is listening on " + path);
  }
  unlink(path.c_str());
  const mode_t old = umask(0177);  // created 0600: root only
  const int rc = bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0) throw sys_error("binding " + path);
  chmod(path.c_str(), 0600);
  if (listen(fd_, 16) != 0) throw sys_error("listening on " + path);
}

ControlServer::~ControlServer() {
  for (auto& c : clients_) close_client(*c);
  if (fd_ >= 0) close(fd_);
  unlink(path_.c_str());
}

void ControlServer::close_client(Client& c) {
  // Its session leaves the detector first: the kernel threshold goes back
  // to what the remaining consumers want.
  c.session.reset();
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  c.closed = true;
}

std::size_t ControlServer::captures() const {
  std::size_t n = 0;
  for (const auto& c : clients_) n += c->capturing() ? 1 : 0;
  return n;
}

void ControlServer::finish(Client& c) {
  if (!c.finishing) c.finishing_ns = monotonic_ns();
  c.finishing = true;
}

void ControlServer::handle_request(Client& c, const std::string& line) {
  ControlRequest req = parse_request(line);
  if (req.error.empty() && req.cmd == ControlRequest::Cmd::Loops && !loops_)
    req.error = "this loopstalld does not answer loops";
  if (!req.error.empty() || req.cmd != ControlRequest::Cmd::Capture) {
    if (!req.error.empty())
      c.out += error_line(req.error);
    else if (req.cmd == ControlRequest::Cmd::Loops)
      c.out += control_line(json({{"ok", true}, {"summary", loops_()}}));
    else
      c.out += control_line(status_());
    finish(c);
    return;
  }
  const CaptureRequest& cap = req.capture;
  // Text is laid out for the client's output (its terminal, or none).
  c.output = std::make_unique<CaptureOutput>(
      cap.format, [&c](std::string_view s) { c.out.append(s); }, TextOptions{cap.terminal_columns, cap.ongoing_lines},
      CoalesceOptions{.enabled = cap.coalesce});
  // The capture file's records after the header: the client writes the file.
  if (cap.save)
    c.output->save(std::make_unique<CaptureRecordSink>([&c](std::string_view s) {
      c.out += kSaveRecordMark;
      c.out.append(s);
    }));
  Selection sel;
  sel.pids = {cap.pids.begin(), cap.pids.end()};
  sel.all_loops = cap.all_loops;
  sel.naming = naming_;  // captures name services as the daemon does
  // First line: the client knows the daemon is capturing for it.
  c.out += answer_line({true, ""});
  c.session = std::make_unique<CaptureSession>(det_, std::move(sel), cap.threshold_ms, c.output->sink());
}

void ControlServer::accept_clients() {
  while (true) {
    const int cfd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) break;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
      close(cfd);  // root only, whatever the file mode says
      continue;
    }
    if (clients_.size() >= kMaxClients) {
      ++refused_;
      const std::string busy = error_line("too many clients (" + std::to_string(kMaxClients) + ")");
      (void)!send(cfd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(cfd);
      continue;
    }
    auto c = std::make_unique<Client>();
    c->fd = cfd;
    c->accepted_ns = monotonic_ns();
    clients_.push_back(std::move(c));
  }
}

// Reads a request line, or EOF (the capture client is done). Anything but
// "no data yet" or EOF means the peer is gone: the client is closed.
void ControlServer::read_client(Client& c) {
  char buf[4096];
  for (int i = 0; i < kMaxReadsPerPoll; ++i) {
    const ssize_t n = read(c.fd, buf, sizeof buf);
    if (n > 0) {
      if (c.capturing() || c.finishing) continue;  // nothing more is expected: discarded
      c.in.append(buf, static_cast<std::size_t>(n));
      const auto nl = c.in.find('\n');
      if (nl != std::string::npos) {
        handle_request(c, c.in.substr(0, nl));
        c.in.clear();
        c.in.shrink_to_fit();
      } else if (c.in.size() > kMaxRequest) {
        c.out += error_line("request too long");
        finish(c);
      }
      continue;
    }
    if (n == 0) {
      if (c.capturing()) c.session->finish();
      finish(c);
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) close_client(c);  // ECONNRESET & co.
    return;
  }
}

void ControlServer::poll() {
  accept_clients();
  const std::uint64_t now = monotonic_ns();
  for (auto& cp : clients_) {
    Client& c = *cp;
    if (c.closed) continue;
    read_client(c);
    if (c.closed) continue;
    // Write what is buffered.
    while (!c.out.empty()) {
      const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {  // EPIPE, ECONNRESET: nobody will read the rest
        close_client(c);
        break;
      }
      c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.closed) continue;
    if (c.out.size() > kMaxBacklog) {
      ++dropped_;
      close_client(c);
      continue;
    }
    // A request must arrive, and a finished answer be read, in time.
    const bool waiting_for_request = !c.capturing() && !c.finishing;
    if ((waiting_for_request && now - c.accepted_ns > kClientTimeoutNs) ||
        (c.finishing && !c.out.empty() && now - c.finishing_ns > kClientTimeoutNs)) {
      ++dropped_;
      close_client(c);
      continue;
    }
    if (c.finishing && c.out.empty()) close_client(c);
  }
  std::erase_if(clients_, [](const std::unique_ptr<Client>& c) { return c->closed; });
}

int connect_control(const std::string& path) {
  sockaddr_un addr{};
  try {
    addr = unix_address(path);
  } catch (const std::exception&) {
    errno = ENAMETOOLONG;
    return -1;
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace loopstall
