#include "support/moto.h"

namespace bao::testing {

bool MotoServer::Start(std::string* error) {
  port_ = FreePort();
  if (!process_.Start(
          {PeersDir() + "/venv/bin/moto_server", "-H", "127.0.0.1", "-p", std::to_string(port_)},
          {{"AWS_EC2_METADATA_DISABLED", "true"}}, error)) {
    return false;
  }
  if (!WaitForHttp(endpoint() + "/moto-api/", std::chrono::seconds(60))) {
    if (error != nullptr)
      *error = "moto did not answer on port " + std::to_string(port_) + ": " + process_.Stderr();
    return false;
  }
  return true;
}

void MotoServer::Stop() {
  if (process_.pid() > 0 && process_.Running()) process_.Stop();
}

}  // namespace bao::testing
