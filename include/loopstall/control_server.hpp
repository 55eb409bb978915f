// loopstalld's control socket (AF_UNIX stream, root only), the server end of
// control_protocol.hpp. All sockets are non-blocking and served from the
// detector's thread; a client that does not read is dropped, never waited
// for. At most 64 clients; a request must arrive within 5 s of connecting; a
// client whose socket fails (e.g. it closed with unread data) is closed at
// once and its capture removed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loopstall/detector.hpp"
#include "loopstall/service_name.hpp"

namespace loopstall {

class ControlServer {
 public:
  // Creates the socket (and its directory, 0700) with mode 0600; throws
  // std::runtime_error naming the path on failure. `status` answers
  // {"cmd":"status"}.
  ControlServer(const std::string& path, Detector& det, std::function<nlohmann::json()> status);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Accepts, reads requests, flushes output; call from the main loop.
  void poll();
  std::size_t clients() const { return clients_.size(); }
  // Clients with a capture running (each has a session in the detector).
  std::size_t captures() const;
  std::uint64_t dropped_clients() const { return dropped_; }
  std::uint64_t refused_clients() const { return refused_; }
  // Captures name services as the daemon does.
  void set_naming(std::shared_ptr<const ServiceNaming> naming) { naming_ = std::move(naming); }
  // Answers "loops" (loopstall top): the daemon's per-process totals.
  void set_loops(std::function<nlohmann::json()> loops) { loops_ = std::move(loops); }

 private:
  struct Client;
  void accept_clients();
  void read_client(Client& c);
  void handle_request(Client& c, const std::string& line);
  void finish(Client& c);
  void close_client(Client& c);

  std::string path_;
  std::shared_ptr<const ServiceNaming> naming_;
  int fd_ = -1;
  Detector& det_;
  std::function<nlohmann::json()> status_;
  std::function<nlohmann::json()> loops_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::uint64_t dropped_ = 0, refused_ = 0;
};

// Client side: connects to the daemon's socket; -1 with errno when it cannot
// (ENOENT/ECONNREFUSED: no daemon listens; EACCES: not allowed to).
int connect_control(const std::string& path);

}  // namespace loopstall
