// Starts the project's Kubernetes API test server (tests/k8s_testserver) on 127.0.0.1 with a
// kernel-chosen port and stops it on destruction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/testing.h"

namespace bao::testing {

struct K8sTestServerOptions {
  std::vector<std::string> tokens;  // required bearer tokens; empty = no authentication
  std::string tls_cert, tls_key;    // PEM files; empty = plain HTTP
  int event_window = 0;             // 0 = the server's default
  int bookmark_interval_ms = 200;
};

class K8sTestServer {
 public:
  K8sTestServer() = default;
  ~K8sTestServer();
  // Launches k8s-testserver and waits (up to 10 s) for its ready file. False with `error`
  // filled (including the server's stderr) when it does not come up.
  bool Start(const K8sTestServerOptions& options = {}, std::string* error = nullptr);
  void Stop();
  // "http://127.0.0.1:PORT" (https with TLS).
  const std::string& url() const { return url_; }
  // POST /_test/compact: forget the watch history, so older resourceVersions get 410 Gone.
  bool Compact();
  // POST /_test/tokens: replace the set of accepted bearer tokens.
  bool SetTokens(const std::vector<std::string>& tokens);
  Process& process() { return process_; }

 private:
  bool Post(const std::string& path, const std::string& body);

  TempDir dir_;
  Process process_;
  std::string url_;
  bool tls_ = false;
};

}  // namespace bao::testing
