// Launches the project's OpenBao test server (tests/bao_testserver, see its README.md) for a
// test and drives its /_test/ control API. One BaoTestServer = one imitated cluster process;
// the destructor stops it. Control calls open their own connection, so they may be made from
// any thread (e.g. clearing a stall while another thread is blocked downloading).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/client.h"
#include "support/testing.h"

namespace bao::testing {

struct BaoTestServerOptions {
  int nodes = 3;
  uint64_t state_size = 1 << 20;
  uint64_t seed = 1;
  bool tls = false;  // HTTPS with a CA made by MakeTestPki (see ca_file())
  std::string admin_token = "test-admin-token";  // empty = no admin token
  std::string jwt_public_key_file;               // PEM; empty = JWT logins fail
  std::string jwt_mount;                         // empty = the server's default (jwt-operator)
  std::string seal_key;                          // empty = random per process
  int gzip_level = 0;
  std::string cluster_name;  // empty = the server's default
};

class BaoTestServer {
 public:
  explicit BaoTestServer(BaoTestServerOptions options = {});
  ~BaoTestServer();
  BaoTestServer(const BaoTestServer&) = delete;
  BaoTestServer& operator=(const BaoTestServer&) = delete;

  // Starts the binary and waits (up to 60 s) for its ready file. The error carries the
  // server's stderr when it exits early.
  Status Start();
  // SIGTERM, then SIGKILL after 30 s (the server itself gives up on open connections after 5 s).
  // Returns the exit status (see Process::Stop).
  int Stop();

  const std::vector<std::string>& NodeUrls() const { return urls_; }
  const std::string& Url(int node) const { return urls_.at(static_cast<size_t>(node)); }
  const std::string& admin_token() const { return options_.admin_token; }
  // The CA bundle that verifies the server's certificate ("" without TLS).
  const std::string& ca_file() const { return ca_file_; }
  // TLS options for http::Request talking to this server.
  http::TlsOptions Tls() const;
  // The server's stderr so far (its log), for failure messages.
  std::string Logs() const;
  pid_t pid() const { return process_.pid(); }

  // Control API (POST/GET/DELETE /_test/...). Errors say which call failed and why.
  Result<int> LeaderIndex();
  Status SetLeader(int node);
  Status Seal(int node, bool sealed);
  // `policies`: {"sys/storage/raft/snapshot": ["read"], ...}.
  Status AddToken(const std::string& token, const nlohmann::json& policies);
  // {"name", "bound_audiences", "bound_subject", "policies", "ttl"}.
  Status AddJwtRole(const nlohmann::json& role);
  // {"cut_after_bytes", "corrupt_at_byte", "stall_after_bytes", "leader_change_after_bytes",
  //  "fail_status", "count"}.
  Status SetFaults(const nlohmann::json& faults);
  Status ClearFaults();
  // {"digest", "size", "index", "term", "source"}.
  Result<nlohmann::json> State();
  Result<nlohmann::json> SetState(uint64_t size, uint64_t seed);
  // [{"node", "method", "path"}, ...] for every non-/_test/ request since the last clear.
  Result<nlohmann::json> Requests();
  Status ClearRequests();

 private:
  Result<nlohmann::json> Control(const std::string& method, const std::string& path,
                                 const nlohmann::json& body);

  BaoTestServerOptions options_;
  std::unique_ptr<TempDir> dir_;
  Process process_;
  std::vector<std::string> urls_;
  std::string ca_file_;
};

}  // namespace bao::testing
