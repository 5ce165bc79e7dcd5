// Test peers for the S3 provider: a real MinIO server started on a free loopback port, the AWS
// CLI pointed at it as an independent client, and a small TCP proxy that can cut connections
// in the middle of a request (to prove retries) and records what clients sent.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/tcp_forwarder.h"
#include "support/testing.h"

namespace bao::testing {

class MinioServer {
 public:
  MinioServer() = default;
  ~MinioServer() { Stop(); }

  // Before Start(): the root user and password (MINIO_ROOT_USER, MINIO_ROOT_PASSWORD) instead
  // of the defaults, e.g. recognisable values for tests that look for leaked secrets.
  void SetRootCredentials(std::string access_key, std::string secret_key) {
    access_key_ = std::move(access_key);
    secret_key_ = std::move(secret_key);
  }

  // Before Start(): MINIO_KMS_SECRET_KEY ("<key name>:<base64 of 32 bytes>"), MinIO's built-in
  // KMS, for SSE-S3 and SSE-KMS with that key name.
  void SetKmsSecretKey(std::string key) { kms_secret_key_ = std::move(key); }

  // Starts `minio server DIR --address 127.0.0.1:P --console-address 127.0.0.1:P2` and waits
  // until /minio/health/live answers. False with `error` filled when it does not come up.
  // With `certs_dir` (holding public.crt and private.key) MinIO serves HTTPS.
  bool Start(std::string* error, const std::string& certs_dir = "");
  void Stop();

  std::string endpoint() const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_);
  }
  int port() const { return port_; }
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }

  // The environment for the AWS CLI (root credentials, us-east-1, no instance metadata).
  std::map<std::string, std::string> AwsEnv() const;
  // Runs `aws --endpoint-url <endpoint> <args...>`.
  RunResult Aws(const std::vector<std::string>& args) const;
  // Creates a bucket with the AWS CLI; false (and the CLI's stderr in `error`) on failure.
  bool CreateBucket(const std::string& bucket, std::string* error = nullptr) const;
  // The same with Object Lock enabled (--object-lock-enabled-for-bucket; versioned).
  bool CreateLockedBucket(const std::string& bucket, std::string* error = nullptr) const;

 private:
  TempDir dir_;
  Process process_;
  int port_ = 0;
  bool tls_ = false;
  std::string access_key_ = "baotestadmin";
  std::string secret_key_ = "baotestadmin-secret-key";
  std::string kms_secret_key_;
};

// Forwards TCP connections from 127.0.0.1:port() to 127.0.0.1:upstream_port. With CutAfter(),
// once the client has sent `pattern` on a connection and then `bytes` more bytes have flowed
// in either direction (request or response body), that connection is reset - at most `times`
// times.
class TcpProxy {
 public:
  explicit TcpProxy(int upstream_port);
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return forwarder_.port(); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }
  void CutAfter(const std::string& pattern, size_t bytes, int times);
  int cuts() const { return cuts_done_.load(); }
  // As CutAfter(), but instead of resetting the connection, flips one bit of the client's
  // bytes once `bytes` more of them followed `pattern` (so it lands in the request body), and
  // keeps forwarding. At most `times` times; cuts() counts them.
  void CorruptAfter(const std::string& pattern, size_t bytes, int times);
  // Counts how often clients send `pattern` from now on (e.g. "?partNumber=" per UploadPart).
  void Watch(const std::string& pattern);
  int Seen() const { return seen_.load(); }
  // The first 64 KiB of each request a client sent (a read that starts a new request line
  // starts a new window; connections are reused across requests), concatenated.
  std::string Captured() const;

 private:
  TcpForwarder::Tap NewTap();

  mutable std::mutex mu_;
  std::string pattern_;
  size_t cut_bytes_ = 0;
  int cuts_left_ = 0;
  bool corrupt_ = false;  // CorruptAfter() rather than CutAfter()
  std::atomic<int> cuts_done_{0};
  std::string watch_;
  std::atomic<int> seen_{0};
  std::string captured_;
  TcpForwarder forwarder_;  // last: its threads end before the state above goes
};

}  // namespace bao::testing
