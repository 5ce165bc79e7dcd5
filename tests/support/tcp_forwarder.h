// A TCP forwarder for fault-injection proxies in tests: connections to 127.0.0.1:port() are
// relayed to 127.0.0.1:upstream_port, one thread per connection. Every read passes through a
// Tap (one per connection, made by the factory) before it is forwarded; the tap may change the
// bytes, shorten the read, or end the connection after forwarding what is left. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bao::testing {

class TcpForwarder {
 public:
  enum class Direction { kToServer, kToClient };
  enum class Verdict {
    kForward,  // forward the (possibly edited) bytes and go on
    kClose,    // forward them, then close both sides (a clean truncation)
    kReset,    // forward them, then reset both sides (RST, like a crashed middlebox)
  };
  // Sees `*n` bytes read at `buf` (capacity 64 KiB) flowing in `direction`; may edit them and
  // lower `*n`. Called from the connection's thread only.
  using Tap = std::function<Verdict(Direction direction, char* buf, size_t* n)>;
  using TapFactory = std::function<Tap()>;

  TcpForwarder(int upstream_port, TapFactory new_tap);
  // Closes the listener and every open connection, and joins the threads.
  ~TcpForwarder();
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  int port() const { return port_; }
  // While down, open connections are closed and new ones are closed at once.
  void SetDown(bool down) { down_ = down; }

 private:
  void AcceptLoop();
  void Relay(int client_fd);

  const int upstream_port_;
  const TapFactory new_tap_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> down_{false};
  std::mutex mu_;
  std::vector<std::thread> relays_;
  std::thread acceptor_;
};

}  // namespace bao::testing
