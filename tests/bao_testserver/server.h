// The HTTP side of bao-testserver: one httplib listener per node on 127.0.0.1 (HTTP or
// HTTPS), all sharing one Cluster. Implements the OpenBao endpoints listed in README.md and
// the /_test/ control API. Start() binds every listener before serving; Stop() may be called
// from any thread.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster.h"
#include "common/status.h"

namespace httplib {
class Server;
}

namespace bao::testserver {

struct TlsFiles {
  std::string cert_file;  // empty = plain HTTP
  std::string key_file;
};

// Where the listeners bind: `host` (an IPv4 loopback address) and, when first_port is not 0,
// node 0 on that port (the others on kernel-chosen ports). The benchmark serves the seed
// system's executor, which only knows port 8200, this way.
struct ListenAddress {
  std::string host = "127.0.0.1";
  int first_port = 0;
};

class ClusterServer {
 public:
  ClusterServer(Cluster& cluster, TlsFiles tls, ListenAddress listen = {});
  ~ClusterServer();
  ClusterServer(const ClusterServer&) = delete;
  ClusterServer& operator=(const ClusterServer&) = delete;

  // Binds one listener per node on the ListenAddress (kernel-chosen ports but node 0's), reserves a
  // cluster port per node (bound, never served), tells the cluster both, and starts serving.
  // kInvalidArgument when the TLS files do not load, kUnavailable when a socket cannot be bound.
  Status Start();
  std::vector<std::string> Urls() const { return urls_; }
  // Stops accepting and ends streams in progress; returns at once.
  void Stop();
  // Waits for the listener threads to end.
  void Join();

 private:
  Cluster& cluster_;
  TlsFiles tls_;
  ListenAddress listen_;
  std::vector<std::unique_ptr<httplib::Server>> servers_;
  std::vector<std::thread> threads_;
  std::vector<std::string> urls_;
  std::vector<int> cluster_fds_;  // sockets holding the nodes' cluster ports
};

}  // namespace bao::testserver
