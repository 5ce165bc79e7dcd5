#include "support/minio.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace bao::testing {

bool MinioServer::Start(std::string* error, const std::string& certs_dir) {
  port_ = FreePort();
  int console = FreePort();
  tls_ = !certs_dir.empty();
  std::string addr = "127.0.0.1:" + std::to_string(port_);
  std::vector<std::string> argv = {PeerBinary("minio"),
                                   "server",
                                   dir_.File("data"),
                                   "--address",
                                   addr,
                                   "--console-address",
                                   "127.0.0.1:" + std::to_string(console),
                                   "--quiet"};
  if (tls_) {
    argv.push_back("--certs-dir");
    argv.push_back(certs_dir);
  }
  if (!process_.Start(argv,
                      {{"MINIO_ROOT_USER", access_key_},
                       {"MINIO_ROOT_PASSWORD", secret_key_},
                       {"MINIO_BROWSER", "off"},
                       {"MINIO_UPDATE", "off"}},
                      error)) {
    return false;
  }
  if (!WaitForHttp(endpoint() + "/minio/health/live", std::chrono::seconds(30))) {
    if (error != nullptr) *error = "MinIO did not answer on " + addr + ": " + process_.Stderr();
    return false;
  }
  return true;
}

void MinioServer::Stop() {
  if (process_.pid() > 0 && process_.Running()) process_.Stop();
}

std::map<std::string, std::string> MinioServer::AwsEnv() const {
  return {{"AWS_ACCESS_KEY_ID", access_key_},
          {"AWS_SECRET_ACCESS_KEY", secret_key_},
          {"AWS_SESSION_TOKEN", ""},
          {"AWS_DEFAULT_REGION", "us-east-1"},
          {"AWS_EC2_METADATA_DISABLED", "true"},
          {"AWS_CONFIG_FILE", "/dev/null"},
          {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
          {"AWS_PAGER", ""}};
}

RunResult MinioServer::Aws(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"aws", "--endpoint-url", endpoint()};
  if (tls_) argv.push_back("--no-verify-ssl");  // the tests check TLS with their own client
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, AwsEnv(), std::chrono::minutes(2));
}

bool MinioServer::CreateBucket(const std::string& bucket, std::string* error) const {
  RunResult r = Aws({"s3api", "create-bucket", "--bucket", bucket});
  if (r.exit_code != 0 && error != nullptr) *error = r.err;
  return r.exit_code == 0;
}

TcpProxy::TcpProxy(int upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
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

TcpProxy::~TcpProxy() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
  }
  for (std::thread& t : workers_) t.join();
}

void TcpProxy::CutAfter(const std::string& pattern, size_t bytes, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  pattern_ = pattern;
  cut_bytes_ = bytes;
  cuts_left_ = times;
  corrupt_ = false;
}

void TcpProxy::CorruptAfter(const std::string& pattern, size_t bytes, int times) {
  CutAfter(pattern, bytes, times);
  std::lock_guard<std::mutex> lock(mu_);
  corrupt_ = true;
}

void TcpProxy::Watch(const std::string& pattern) {
  std::lock_guard<std::mutex> lock(mu_);
  watch_ = pattern;
  seen_ = 0;
}

std::string TcpProxy::Captured() const {
  std::lock_guard<std::mutex> lock(mu_);
  return captured_;
}

void TcpProxy::AcceptLoop() {
  while (!stop_) {
    int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (stop_) return;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, fd] { Pump(fd); });
  }
}

void TcpProxy::Pump(int client) {
  int upstream = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  if (connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(upstream);
    close(client);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(client);
    open_fds_.push_back(upstream);
  }
  std::string window;      // recent client bytes, to find the pattern across reads
  std::string watch_tail;  // the same for the watched pattern
  size_t captured_here = 0;
  long after_pattern = -1;  // bytes sent since the pattern was seen, -1 = not seen
  char buf[64 * 1024];
  bool cut = false;
  while (!stop_ && !cut) {
    pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    if (poll(fds, 2, 200) <= 0) continue;
    bool closed = false;
    for (int i = 0; i < 2 && !closed && !cut; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      int from = i == 0 ? client : upstream, to = i == 0 ? upstream : client;
      ssize_t n = read(from, buf, sizeof buf);
      if (n <= 0) {
        closed = true;
        break;
      }
      size_t send_n = static_cast<size_t>(n);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (i == 0 && captured_here < 65536) {
          size_t take = std::min<size_t>(send_n, 65536 - captured_here);
          captured_.append(buf, take);
          captured_here += take;
        }
        if (i == 0 && !watch_.empty()) {
          std::string scan = watch_tail + std::string(buf, send_n);
          for (size_t at = scan.find(watch_); at != std::string::npos;
               at = scan.find(watch_, at + 1)) {
            ++seen_;
          }
          size_t keep = std::min(scan.size(), watch_.size() - 1);
          watch_tail = scan.substr(scan.size() - keep);
        }
        if (cuts_left_ > 0 && !pattern_.empty()) {
          if (after_pattern < 0 && i == 0) {
            window.append(buf, send_n);
            size_t at = window.find(pattern_);
            if (at != std::string::npos) {
              after_pattern = static_cast<long>(window.size() - at - pattern_.size());
            } else if (window.size() > pattern_.size()) {
              window.erase(0, window.size() - pattern_.size());
            }
          } else if (after_pattern >= 0 && (i == 0 || !corrupt_)) {
            after_pattern += n;  // request body or response body, whichever flows
          }
          if (after_pattern >= static_cast<long>(cut_bytes_) && corrupt_ && i == 0) {
            --cuts_left_;
            ++cuts_done_;
            buf[send_n - 1] ^= 0x01;  // at or after `bytes` into the body
            after_pattern = -1;       // a later request on this connection may match again
            window.clear();
          } else if (after_pattern >= static_cast<long>(cut_bytes_) && !corrupt_) {
            --cuts_left_;
            ++cuts_done_;
            cut = true;
            // Forward only part of this read, then drop the connection.
            send_n = static_cast<size_t>(n) / 2;
          }
        }
      }
      size_t off = 0;
      while (off < send_n) {
        ssize_t w = write(to, buf + off, send_n - off);
        if (w <= 0) {
          closed = true;
          break;
        }
        off += static_cast<size_t>(w);
      }
    }
    if (closed) break;
  }
  if (cut) {
    linger lg{1, 0};  // RST, like a crashed middlebox
    setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(upstream, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), client), open_fds_.end());
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), upstream), open_fds_.end());
  }
  close(client);
  close(upstream);
}

}  // namespace bao::testing
