// The shared model of the imitated OpenBao Raft cluster: node roles (active, standby,
// sealed), tokens with per-path capabilities, JWT roles and logins, the
// Raft state (index, term, state.bin), the fault switches and the request log. Every HTTP
// listener of the process reads and changes this one object. Thread-safe (one mutex).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "archive.h"
#include "common/status.h"
#include "state.h"

namespace bao::testserver {

// Capabilities as in OpenBao policies.
enum Capability : unsigned {
  kRead = 1,
  kUpdate = 2,
  kCreate = 4,
  kList = 8,
  kDelete = 16,
  kSudo = 32,
  kAllCapabilities = 63,
};

// Path pattern -> capability bits. A pattern ending in '*' matches every path with that
// prefix (as in OpenBao policies); any other pattern matches exactly.
using Policy = std::map<std::string, unsigned>;

// Parses {"path": ["read", "update", ...], ...}; kInvalidArgument names the bad entry.
Result<Policy> ParsePolicy(const nlohmann::json& json);

struct JwtRole {
  std::string name;
  std::vector<std::string> bound_audiences;
  std::string bound_subject;
  Policy policy;
  int64_t ttl_seconds = 3600;
};

struct LoginResult {
  std::string client_token;
  std::string accessor;
  std::vector<std::string> policies;
  int64_t lease_duration = 0;
};

struct TokenInfo {
  std::string accessor;
  std::vector<std::string> policies;
  int64_t ttl_seconds = 0;  // 0 = never expires
  bool root = false;
};

struct Faults {
  std::optional<uint64_t> cut_after_bytes;
  std::optional<uint64_t> corrupt_at_byte;
  std::optional<uint64_t> stall_after_bytes;
  std::optional<uint64_t> leader_change_after_bytes;
  int fail_status = 0;
  bool Any() const {
    return cut_after_bytes || corrupt_at_byte || stall_after_bytes || leader_change_after_bytes ||
           fail_status != 0;
  }
};

struct ClusterConfig {
  int nodes = 3;
  std::string cluster_name;  // empty = "vault-cluster-<8 hex>", derived from the seal key
  std::string seal_key;
  std::string admin_token;         // empty = none
  std::string jwt_public_key_pem;  // empty = JWT logins fail
  std::string jwt_mount = "jwt-operator";
  int gzip_level = 0;
  std::string temp_dir;  // where restored states are spooled
  std::string version = "2.7.2";
};

enum class Role { kActive, kStandby, kSealed };

class Cluster {
 public:
  Cluster(ClusterConfig config, std::shared_ptr<const State> initial_state);

  const ClusterConfig& config() const { return config_; }
  std::string cluster_id() const { return cluster_id_; }
  std::string cluster_name() const { return cluster_name_; }

  // Node URLs ("http(s)://127.0.0.1:port") and cluster ports (reserved, never served), set
  // once all listeners are bound.
  void SetNodeUrls(std::vector<std::string> urls, std::vector<int> cluster_ports);
  std::string NodeUrl(int node) const;
  // "https://127.0.0.1:<cluster port>" of `node`; "" when out of range.
  std::string ClusterAddress(int node) const;
  int node_count() const { return config_.nodes; }

  Role RoleOf(int node) const;
  // The active node: the leader unless it is sealed; -1 when there is none.
  int ActiveNode() const;
  int Leader() const;
  // Counts leadership changes; a snapshot stream that sees it move is cut.
  uint64_t LeaderEpoch() const;
  std::chrono::system_clock::time_point ActiveSince() const;
  // kInvalidArgument when `node` is out of range.
  Status SetLeader(int node);
  // Moves leadership to the next unsealed node after the current leader (leader change).
  void StepDown();
  Status SetSealed(int node, bool sealed);

  // Tokens. `policy_names` are what lookups and logins report.
  void AddToken(const std::string& token, Policy policy, std::vector<std::string> policy_names,
                int64_t ttl_seconds);
  // True when `token` is known and unexpired (whatever it allows).
  bool KnowsToken(const std::string& token) const;
  // True when `token` is known, unexpired and allows `capability` on `path` (no leading '/').
  bool Allowed(const std::string& token, const std::string& path, Capability capability) const;
  std::optional<TokenInfo> LookupToken(const std::string& token) const;
  void RevokeToken(const std::string& token);

  void AddJwtRole(JwtRole role);
  // POST auth/<mount>/login. kInvalidArgument (HTTP 400) with an OpenBao-like message on any
  // failure: unknown role, bad signature, expired, audience or subject mismatch.
  Result<LoginResult> JwtLogin(const std::string& role, const std::string& jwt);

  // Faults. `count` = how many snapshot requests they apply to (nullopt = until cleared).
  void SetFaults(Faults faults, std::optional<int64_t> count);
  void ClearFaults();
  // The faults for a snapshot request starting now (consumes one use of the count).
  Faults TakeFaults();
  uint64_t FaultGeneration() const;

  void LogRequest(int node, const std::string& method, const std::string& path);
  nlohmann::json Requests() const;
  void ClearRequests();

  struct StateView {
    std::shared_ptr<const State> state;
    uint64_t index = 0;
    uint64_t term = 0;
  };
  StateView CurrentState() const;
  // Replaces the state (a new Raft index is committed).
  void SetState(std::shared_ptr<const State> state);
  // Installs a restored snapshot: new state, index above both the old and the snapshot's.
  void InstallSnapshot(const RestoredSnapshot& snapshot);
  SnapshotMeta MetaForSnapshot(const StateView& view) const;

  // Blocks until the fault generation or the leader epoch differs from the given values, the
  // cluster shuts down, or `timeout` passes.
  void WaitForChange(uint64_t fault_generation, uint64_t leader_epoch,
                     std::chrono::milliseconds timeout) const;
  void Shutdown();
  bool shutting_down() const;

 private:
  int ActiveNodeLocked() const;
  std::optional<Policy> PolicyFor(const std::string& token) const;

  ClusterConfig config_;
  std::string cluster_id_;
  std::string cluster_name_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<std::string> urls_;
  std::vector<int> cluster_ports_;
  std::vector<bool> sealed_;
  int leader_ = 0;
  uint64_t leader_epoch_ = 0;
  std::chrono::system_clock::time_point active_since_;

  struct TokenEntry {
    Policy policy;
    TokenInfo info;
    std::optional<std::chrono::steady_clock::time_point> expires;
  };
  std::map<std::string, TokenEntry> tokens_;
  std::map<std::string, JwtRole> roles_;

  Faults faults_;
  std::optional<int64_t> fault_count_;
  uint64_t fault_generation_ = 0;

  std::vector<nlohmann::json> requests_;

  std::shared_ptr<const State> state_;
  uint64_t index_ = 10;
  uint64_t term_ = 1;
  bool shutting_down_ = false;
};

}  // namespace bao::testserver
