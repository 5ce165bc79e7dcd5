#include "support/fake_gcs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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

FaultProxy::FaultProxy(int upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen(listen_fd_, 64);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  acceptor_.join();
  for (auto& t : pumps_) t.join();
}

void FaultProxy::CutUpstreamAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  up_budget_ = static_cast<int64_t>(n);
}

void FaultProxy::CutDownstreamAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  down_budget_ = static_cast<int64_t>(n);
}

void FaultProxy::SetDown(bool down) {
  down_ = down;
}

std::string FaultProxy::ClientBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return client_bytes_;
}

void FaultProxy::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    if (down_) {
      close(fd);
      continue;
    }
    pumps_.emplace_back([this, fd] { Pump(fd); });
  }
}

void FaultProxy::Pump(int client_fd) {
  int up = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  if (connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(up);
    close(client_fd);
    return;
  }
  char buf[64 * 1024];
  bool open = true;
  while (open && !stop_ && !down_) {
    pollfd p[2] = {{client_fd, POLLIN, 0}, {up, POLLIN, 0}};
    if (poll(p, 2, 50) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int from = i == 0 ? client_fd : up;
      int to = i == 0 ? up : client_fd;
      ssize_t n = read(from, buf, sizeof buf);
      if (n <= 0) {
        open = false;
        break;
      }
      size_t forward = static_cast<size_t>(n);
      bool cut = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        int64_t& budget = i == 0 ? up_budget_ : down_budget_;
        if (budget >= 0) {
          if (static_cast<int64_t>(forward) >= budget) {
            forward = static_cast<size_t>(budget);
            budget = -1;
            cut = true;
          } else {
            budget -= static_cast<int64_t>(forward);
          }
        }
        if (i == 0 && client_bytes_.size() < (32u << 20)) client_bytes_.append(buf, forward);
      }
      size_t off = 0;
      while (off < forward) {
        ssize_t w = write(to, buf + off, forward - off);
        if (w <= 0) {
          open = false;
          break;
        }
        off += static_cast<size_t>(w);
      }
      if (cut) {
        ++cuts_;
        open = false;
      }
    }
  }
  shutdown(client_fd, SHUT_RDWR);
  shutdown(up, SHUT_RDWR);
  close(client_fd);
  close(up);
}

}  // namespace bao::testing
