#include "loopstall/http_server.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string_view>

#include "loopstall/clock.hpp"

namespace loopstall {
namespace {

// Why not cpp-httplib's server (still the Alertmanager client): it gives each
// connection a pool thread for the connection's whole life, so 2 trickling
// connections held both workers and /healthz went unanswered.
constexpr std::size_t kMaxConnections = 256;
constexpr std::size_t kMaxRequestBytes = 8192;
constexpr std::uint64_t kRequestTimeoutNs = 2'000'000'000ULL;
constexpr std::uint64_t kResponseTimeoutNs = 10'000'000'000ULL;
// After the answer: read what the client still sends until it closes, so the
// close does not reset the connection before the answer was read.
constexpr std::uint64_t kLingerNs = 1'000'000'000ULL;
constexpr int kMaxAcceptsPerWake = 64;

enum class Phase { Request, Response, Linger };

struct Conn {
  std::uint64_t opened_ns = 0, deadline_ns = 0;
  Phase phase = Phase::Request;
  std::string in, out;
  std::size_t sent = 0;
};

std::string_view status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Service Unavailable";
  }
}

std::string response(int status, const std::string& type, const std::string& body, bool head) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(status_text(status)) +
                  "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n";
  if (status == 405) r += "Allow: GET, HEAD\r\n";
  r += "\r\n";
  if (!head) r += body;
  return r;
}

// End of the request head ("\r\n\r\n", or bare "\n\n"), npos if not yet.
std::size_t head_end(const std::string& in) {
  const auto crlf = in.find("\r\n\r\n");
  const auto lf = in.find("\n\n");
  return std::min(crlf, lf);
}

}  // namespace

struct MetricsServer::Impl {
  const Metrics& reg;
  std::function<bool()> healthy;
  int listen_fd = -1, epoll_fd = -1, wake_fd = -1, spare_fd = -1;
  std::atomic<bool> stop{false};
  std::map<int, Conn> conns;

  Impl(const Metrics& r, std::function<bool()> h) : reg(r), healthy(std::move(h)) {}
  ~Impl() {
    for (auto& [fd, c] : conns) close(fd);
    for (int fd : {listen_fd, epoll_fd, wake_fd, spare_fd})
      if (fd >= 0) close(fd);
  }

  std::string answer(std::string_view head) {
    const std::string_view line = head.substr(0, head.find_first_of("\r\n"));
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return response(400, "text/plain", "bad request\n", false);
    const std::string_view method = line.substr(0, sp1);
    std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    const bool head_only = method == "HEAD";
    if (method != "GET" && !head_only) return response(405, "text/plain", "GET or HEAD only\n", false);
    if (path == "/metrics") return response(200, "text/plain; version=0.0.4; charset=utf-8", reg.render(), head_only);
    if (path == "/healthz") {
      const bool ok = !healthy || healthy();
      return response(ok ? 200 : 503, "text/plain", ok ? "ok\n" : "detector loop stalled\n", head_only);
    }
    if (path == "/") return response(200, "text/plain", "loopstalld: see /metrics and /healthz\n", head_only);
    return response(404, "text/plain", "not found\n", head_only);
  }

  void drop(int fd) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
  }

  void drop_oldest() {
    auto oldest = conns.begin();
    for (auto it = conns.begin(); it != conns.end(); ++it)
      if (it->second.opened_ns < oldest->second.opened_ns) oldest = it;
    if (oldest != conns.end()) drop(oldest->first);
  }

  void watch(int fd, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd, op, fd, &ev);
  }

  void accept_all() {
    for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: make room, or refuse this one through the
          // spare descriptor (else the pending connection wakes epoll forever).
          if (!conns.empty()) {
            drop_oldest();
          } else if (spare_fd >= 0) {
            close(spare_fd);
            const int refused = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (refused >= 0) close(refused);
            spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
          }
          continue;
        }
        return;  // EAGAIN: accepted everything pending
      }
      if (conns.size() >= kMaxConnections) drop_oldest();
      Conn c;
      c.opened_ns = monotonic_ns();
      c.deadline_ns = c.opened_ns + kRequestTimeoutNs;
      conns.emplace(fd, std::move(c));
      watch(fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
    }
  }

  // Sends what it can; false when the connection is done with.
  bool flush(int fd, Conn& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) return false;
      c.sent += static_cast<std::size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    c.phase = Phase::Linger;
    c.deadline_ns = monotonic_ns() + kLingerNs;
    c.out.clear();
    c.out.shrink_to_fit();
    watch(fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
    return true;
  }

  // Handles readiness of one connection; false when it is to be closed.
  bool serve(int fd, Conn& c, std::uint32_t events) {
    if (c.phase == Phase::Response) return (events & EPOLLERR) ? false : flush(fd, c);
    char buf[4096];
    while (true) {
      const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return !(events & (EPOLLERR | EPOLLHUP));
      if (n <= 0) return false;                // closed or failed before (or after) its answer
      if (c.phase == Phase::Linger) continue;  // discarded
      c.in.append(buf, static_cast<std::size_t>(n));
      const auto end = head_end(c.in);
      if (end == std::string::npos && c.in.size() < kMaxRequestBytes) continue;
      c.out = end == std::string::npos || end > kMaxRequestBytes
                  ? response(431, "text/plain", "request too large\n", false)
                  : answer(std::string_view(c.in).substr(0, end));
      c.in.clear();
      c.in.shrink_to_fit();
      c.phase = Phase::Response;
      c.deadline_ns = monotonic_ns() + kResponseTimeoutNs;
      watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
      return flush(fd, c);
    }
  }

  void run() {
    epoll_event events[64];
    while (!stop.load()) {
      const int n = epoll_wait(epoll_fd, events, 64, 100);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd) continue;
        if (fd == listen_fd) {
          accept_all();
          continue;
        }
        auto it = conns.find(fd);
        if (it != conns.end() && !serve(fd, it->second, events[i].events)) drop(fd);
      }
      const std::uint64_t now = monotonic_ns();
      for (auto it = conns.begin(); it != conns.end();) {
        const int fd = it->first;
        const bool late = now >= it->second.deadline_ns;
        ++it;
        if (late) drop(fd);
      }
    }
  }
};

MetricsServer::MetricsServer(const std::string& host, int port, const Metrics& reg, std::function<bool()> healthy)
    : impl_(std::make_unique<Impl>(reg, std::move(healthy))) {
  const auto fail = [&](const std::string& why) {
    return std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + " for metrics (" + why + ")");
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    throw fail(gai_strerror(rc));
  std::string why = "no address";
  for (addrinfo* ai = res; ai && impl_->listen_fd < 0; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
      impl_->listen_fd = fd;
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    } else {
      why = std::strerror(errno);
      close(fd);
    }
  }
  freeaddrinfo(res);
  if (impl_->listen_fd < 0) throw fail(why);
  impl_->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  impl_->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  impl_->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (impl_->epoll_fd < 0 || impl_->wake_fd < 0) throw fail(std::strerror(errno));
  impl_->watch(impl_->listen_fd, EPOLLIN, EPOLL_CTL_ADD);
  impl_->watch(impl_->wake_fd, EPOLLIN, EPOLL_CTL_ADD);
  thread_ = std::thread([this] { impl_->run(); });
}

MetricsServer::~MetricsServer() {
  impl_->stop.store(true);
  const std::uint64_t one = 1;
  (void)!write(impl_->wake_fd, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

}  // namespace loopstall
