#include "support/fake_gcs.h"

#include <algorithm>

#include "http/client.h"

namespace bao::testing {

FakeGcsServer::~FakeGcsServer() {
  if (port_ != 0) process_.Stop(std::chrono::milliseconds(2000));
}

bool FakeGcsServer::Start(std::string* error) {
  port_ = FreePort();
  const std::string bin = PeerBinary("fake-gcs-server");
  const std::string hostport = "127.0.0.1:" + std::to_string(port_);
  if (!process_.Start({bin, "-scheme", "http", "-host", "127.0.0.1", "-port", std::to_string(port_),
                       "-backend", "memory", "-public-host", hostport, "-external-url",
                       "http://" + hostport, "-log-level", "warn"},
                      {}, error)) {
    *error = "cannot start " + bin + " (run scripts/install-peers.sh): " + *error;
    return false;
  }
  if (!WaitForHttp(url() + "/_internal/healthcheck", std::chrono::seconds(20))) {
    *error = "fake-gcs-server did not answer within 20 s: " + Logs();
    return false;
  }
  return true;
}

bool FakeGcsServer::CreateBucket(const std::string& name, std::string* error) {
  http::Client client;
  http::Request req;
  req.method = "POST";
  req.url = url() + "/storage/v1/b?project=test";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = "{\"name\":\"" + name + "\"}";
  auto resp = client.Do(req);
  if (!resp.ok() || !resp->ok()) {
    *error = resp.ok() ? "HTTP " + std::to_string(resp->status) + ": " + resp->body
                       : resp.status().ToString();
    return false;
  }
  return true;
}

FaultProxy::FaultProxy(int upstream_port)
    : forwarder_(upstream_port, [this] {
        return
            [this](TcpForwarder::Direction d, char* buf, size_t* n) { return OnRead(d, buf, n); };
      }) {}

void FaultProxy::CutUpstreamAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  up_budget_ = static_cast<int64_t>(n);
}

void FaultProxy::CutDownstreamAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  down_budget_ = static_cast<int64_t>(n);
}

std::string FaultProxy::ClientBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return client_bytes_;
}

TcpForwarder::Verdict FaultProxy::OnRead(TcpForwarder::Direction direction, const char* buf,
                                         size_t* n) {
  const bool from_client = direction == TcpForwarder::Direction::kToServer;
  std::lock_guard<std::mutex> lock(mu_);
  int64_t& budget = from_client ? up_budget_ : down_budget_;
  bool cut = false;
  if (budget >= 0) {
    if (static_cast<int64_t>(*n) >= budget) {
      *n = static_cast<size_t>(budget);
      budget = -1;
      cut = true;
      ++cuts_;
    } else {
      budget -= static_cast<int64_t>(*n);
    }
  }
  if (from_client && client_bytes_.size() < (32u << 20)) client_bytes_.append(buf, *n);
  return cut ? TcpForwarder::Verdict::kClose : TcpForwarder::Verdict::kForward;
}

}  // namespace bao::testing
