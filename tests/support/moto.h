// moto's server mode (STS AssumeRoleWithWebIdentity, S3), started from the peers' Python venv
// on a free loopback port: `venv/bin/moto_server -H 127.0.0.1 -p PORT`.
#pragma once

#include <string>

#include "support/testing.h"

namespace bao::testing {

class MotoServer {
 public:
  MotoServer() = default;
  ~MotoServer() { Stop(); }
  // Starts moto and waits until it answers HTTP. False with `error` filled otherwise.
  bool Start(std::string* error);
  void Stop();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  Process process_;
  int port_ = 0;
};

}  // namespace bao::testing
