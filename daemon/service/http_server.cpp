#include "loopstall/http_server.hpp"

#include <httplib.h>

#include <chrono>
#include <stdexcept>

namespace loopstall {

MetricsServer::MetricsServer(const std::string& host, int port, const Registry& reg, std::function<bool()> healthy)
    : srv_(std::make_unique<httplib::Server>()) {
  srv_->Get("/metrics", [&reg](const httplib::Request&, httplib::Response& res) {
    res.set_content(reg.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv_->Get("/healthz", [healthy](const httplib::Request&, httplib::Response& res) {
    const bool ok = !healthy || healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "detector loop stalled\n", "text/plain");
  });
  srv_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("loopstalld: see /metrics and /healthz\n", "text/plain");
  });
  // Scrapes are rare: two workers, whatever the host's CPU count (the unit's
  // TasksMax stays meaningful).
  srv_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  srv_->set_read_timeout(5, 0);
  srv_->set_write_timeout(5, 0);
  port_ = port == 0 ? srv_->bind_to_any_port(host) : (srv_->bind_to_port(host, port) ? port : -1);
  if (port_ <= 0)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) +
                             " for metrics (address in use or not local?)");
  thread_ = std::thread([this] { srv_->listen_after_bind(); });
  // httplib's stop() is a no-op until listen_after_bind() has marked the
  // server running: wait for that, or a later start-up failure (e.g. the
  // control socket) would hang forever in the destructor's join().
  for (int i = 0; i < 5000 && !srv_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

MetricsServer::~MetricsServer() {
  srv_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace loopstall
