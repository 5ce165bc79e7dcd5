#include "support/tcp_forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bao::testing {

TcpForwarder::TcpForwarder(int upstream_port, TapFactory new_tap)
    : upstream_port_(upstream_port), new_tap_(std::move(new_tap)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      listen(listen_fd_, 64) == 0) {
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpForwarder::~TcpForwarder() {
  stop_ = true;
  acceptor_.join();
  close(listen_fd_);
  std::lock_guard<std::mutex> lock(mu_);
  for (std::thread& t : relays_) t.join();
}

void TcpForwarder::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (down_) {
      close(fd);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    relays_.emplace_back([this, fd] { Relay(fd); });
  }
}

void TcpForwarder::Relay(int client) {
  int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  if (connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(upstream);
    close(client);
    return;
  }
  Tap tap = new_tap_();
  char buf[64 * 1024];
  Verdict verdict = Verdict::kForward;
  bool open = true;
  while (open && verdict == Verdict::kForward && !stop_ && !down_) {
    pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    if (poll(fds, 2, 50) <= 0) continue;
    for (int i = 0; i < 2 && open && verdict == Verdict::kForward; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      int from = i == 0 ? client : upstream;
      int to = i == 0 ? upstream : client;
      ssize_t got = read(from, buf, sizeof buf);
      if (got <= 0) {
        open = false;
        break;
      }
      size_t n = static_cast<size_t>(got);
      verdict = tap(i == 0 ? Direction::kToServer : Direction::kToClient, buf, &n);
      for (size_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, n - off);
        if (w <= 0) {
          open = false;
          break;
        }
        off += static_cast<size_t>(w);
      }
    }
  }
  if (verdict == Verdict::kReset) {
    linger lg{1, 0};
    setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(upstream, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  } else {
    shutdown(client, SHUT_RDWR);
    shutdown(upstream, SHUT_RDWR);
  }
  close(client);
  close(upstream);
}

}  // namespace bao::testing
