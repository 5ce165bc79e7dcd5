// Test peers for the GCS provider: a launcher for the real fake-gcs-server (installed by
// scripts/install-peers.sh) and a small TCP proxy that injects connection failures between a
// client and any loopback server. Both listen on 127.0.0.1 on free ports.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/tcp_forwarder.h"
#include "support/testing.h"

namespace bao::testing {

// fake-gcs-server with the in-memory backend, its public host set to its own address so that
// resumable-session URLs point back at it (or at whatever Host the client used).
class FakeGcsServer {
 public:
  FakeGcsServer() = default;
  ~FakeGcsServer();
  // Starts it and waits (polling, 20 s at most) until it answers. False with `error` filled.
  bool Start(std::string* error);
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Creates a bucket through the JSON API. False with `error` filled.
  bool CreateBucket(const std::string& name, std::string* error);
  std::string Logs() const { return process_.Stdout() + process_.Stderr(); }

 private:
  Process process_;
  int port_ = 0;
};

// Forwards TCP connections from port() to 127.0.0.1:upstream_port, and breaks them on request.
// Thread-safe.
class FaultProxy {
 public:
  explicit FaultProxy(int upstream_port);
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return forwarder_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // One-shot: once `n` more client-to-server bytes have been forwarded, the connection carrying
  // them is closed on both sides (the server sees a truncated request).
  void CutUpstreamAfter(uint64_t n);
  // One-shot: once `n` more server-to-client bytes have been forwarded, that connection is
  // closed on both sides (the client sees a truncated response).
  void CutDownstreamAfter(uint64_t n);
  // While down, open connections are closed and new ones are closed at once.
  void SetDown(bool down) { forwarder_.SetDown(down); }
  // How many cuts have happened.
  int cuts() const { return cuts_.load(); }
  // Everything clients sent through the proxy so far (the first 32 MiB).
  std::string ClientBytes() const;

 private:
  TcpForwarder::Verdict OnRead(TcpForwarder::Direction direction, const char* buf, size_t* n);

  std::atomic<int> cuts_{0};
  mutable std::mutex mu_;
  int64_t up_budget_ = -1;    // bytes until the upstream cut; -1 = none armed
  int64_t down_budget_ = -1;  // bytes until the downstream cut
  std::string client_bytes_;
  TcpForwarder forwarder_;  // last: its threads end before the state above goes
};

}  // namespace bao::testing
