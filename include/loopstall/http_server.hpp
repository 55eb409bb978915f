// GET /metrics (Prometheus text format) and GET /healthz on a background
// thread (cpp-httplib). Rendering takes the registry's lock briefly; the
// detector thread is never blocked by a slow scraper.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "loopstall/metrics.hpp"

namespace httplib {
class Server;
}

namespace loopstall {

class MetricsServer {
 public:
  // healthy(): whether /healthz answers 200 (e.g. the detector loop ran
  // recently). Throws std::runtime_error when the address cannot be bound.
  MetricsServer(const std::string& host, int port, const Registry& reg, std::function<bool()> healthy);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> srv_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace loopstall
