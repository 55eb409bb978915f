// GET /metrics (Prometheus text format) and GET /healthz on a background
// thread. Rendering collects the registry (prometheus-cpp locks one family
// or series at a time); the detector thread is never blocked by a slow
// scraper. Our own server, not prometheus-cpp's civetweb exposer: see
// docs/dependencies.md.
//
// One thread, non-blocking sockets and epoll: a connection costs a buffer,
// not a worker, so connections that trickle bytes (slowloris) or send
// nothing cannot keep /healthz from answering. A connection has 2 s to send
// its request (8 KiB at most) and 10 s to read the answer; at most 256 are
// open, and a new one closes the oldest. Every answer closes the connection
// (no keep-alive: a scrape a second needs none).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "loopstall/metrics.hpp"

namespace loopstall {

class MetricsServer {
 public:
  // healthy(): whether /healthz answers 200 (e.g. the detector loop ran
  // recently). Throws std::runtime_error when the address cannot be bound.
  MetricsServer(const std::string& host, int port, const Metrics& reg, std::function<bool()> healthy);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace loopstall
