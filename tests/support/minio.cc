#include "support/minio.h"

#include <algorithm>
#include <cstring>
#include <string_view>

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
  std::map<std::string, std::string> env = {{"MINIO_ROOT_USER", access_key_},
                                            {"MINIO_ROOT_PASSWORD", secret_key_},
                                            {"MINIO_BROWSER", "off"},
                                            {"MINIO_UPDATE", "off"}};
  if (!kms_secret_key_.empty()) env["MINIO_KMS_SECRET_KEY"] = kms_secret_key_;
  if (!process_.Start(argv, env, error)) {
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

bool MinioServer::CreateLockedBucket(const std::string& bucket, std::string* error) const {
  RunResult r =
      Aws({"s3api", "create-bucket", "--bucket", bucket, "--object-lock-enabled-for-bucket"});
  if (r.exit_code != 0 && error != nullptr) *error = r.err;
  return r.exit_code == 0;
}

TcpProxy::TcpProxy(int upstream_port) : forwarder_(upstream_port, [this] { return NewTap(); }) {}

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

TcpForwarder::Tap TcpProxy::NewTap() {
  struct Connection {
    std::string window;      // recent client bytes, to find the pattern across reads
    std::string watch_tail;  // the same for the watched pattern
    size_t captured = 0;
    long after_pattern = -1;  // bytes since the pattern was seen, -1 = not seen
  };
  auto conn = std::make_shared<Connection>();
  return [this, conn](TcpForwarder::Direction direction, char* buf, size_t* n) {
    const bool from_client = direction == TcpForwarder::Direction::kToServer;
    std::lock_guard<std::mutex> lock(mu_);
    if (from_client && std::string_view(buf, *n).find(" HTTP/1.1\r\n") != std::string_view::npos) {
      conn->captured = 0;  // a new request on this connection
    }
    if (from_client && conn->captured < 65536) {
      size_t take = std::min<size_t>(*n, 65536 - conn->captured);
      captured_.append(buf, take);
      conn->captured += take;
    }
    if (from_client && !watch_.empty()) {
      std::string scan = conn->watch_tail + std::string(buf, *n);
      for (size_t at = scan.find(watch_); at != std::string::npos; at = scan.find(watch_, at + 1)) {
        ++seen_;
      }
      size_t keep = std::min(scan.size(), watch_.size() - 1);
      conn->watch_tail = scan.substr(scan.size() - keep);
    }
    if (cuts_left_ <= 0 || pattern_.empty()) return TcpForwarder::Verdict::kForward;
    if (conn->after_pattern < 0 && from_client) {
      conn->window.append(buf, *n);
      size_t at = conn->window.find(pattern_);
      if (at != std::string::npos) {
        conn->after_pattern = static_cast<long>(conn->window.size() - at - pattern_.size());
      } else if (conn->window.size() > pattern_.size()) {
        conn->window.erase(0, conn->window.size() - pattern_.size());
      }
    } else if (conn->after_pattern >= 0 && (from_client || !corrupt_)) {
      conn->after_pattern += static_cast<long>(*n);  // request or response body
    }
    if (conn->after_pattern < static_cast<long>(cut_bytes_)) return TcpForwarder::Verdict::kForward;
    if (corrupt_) {
      if (!from_client) return TcpForwarder::Verdict::kForward;
      --cuts_left_;
      ++cuts_done_;
      buf[*n - 1] ^= 0x01;       // at or after `bytes` into the body
      conn->after_pattern = -1;  // a later request on this connection may match again
      conn->window.clear();
      return TcpForwarder::Verdict::kForward;
    }
    --cuts_left_;
    ++cuts_done_;
    *n /= 2;  // forward only part of this read, then drop the connection
    return TcpForwarder::Verdict::kReset;
  };
}

}  // namespace bao::testing
