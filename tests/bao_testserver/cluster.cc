#include "cluster.h"

#include <algorithm>

#include "common/redact.h"
#include "crypto/crypto.h"

namespace bao::testserver {
namespace {

std::string UuidFrom(std::string_view seed) {
  std::string hex = crypto::Sha256Hex(seed);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

bool PatternMatches(const std::string& pattern, const std::string& path) {
  if (!pattern.empty() && pattern.back() == '*') {
    return path.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  }
  return pattern == path;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = text.find(sep, start);
    parts.push_back(text.substr(start, pos == std::string::npos ? pos : pos - start));
    if (pos == std::string::npos) return parts;
    start = pos + 1;
  }
}

constexpr int64_t kLeeway = 60;

}  // namespace

Result<Policy> ParsePolicy(const nlohmann::json& json) {
  if (!json.is_object()) {
    return InvalidArgument("policies must be an object of path -> list of capabilities");
  }
  static const std::map<std::string, unsigned> kNames = {
      {"read", kRead},     {"update", kUpdate}, {"create", kCreate},       {"list", kList},
      {"delete", kDelete}, {"sudo", kSudo},     {"root", kAllCapabilities}};
  Policy policy;
  for (const auto& [path, caps] : json.items()) {
    if (!caps.is_array()) {
      return InvalidArgument("capabilities of \"" + path + "\" must be a list of strings");
    }
    unsigned bits = 0;
    for (const auto& cap : caps) {
      if (!cap.is_string() || kNames.count(cap.get<std::string>()) == 0) {
        return InvalidArgument("unknown capability " + cap.dump() + " for \"" + path + "\"");
      }
      bits |= kNames.at(cap.get<std::string>());
    }
    std::string key = path;
    if (!key.empty() && key.front() == '/') key.erase(0, 1);
    policy[key] |= bits;
  }
  return policy;
}

Cluster::Cluster(ClusterConfig config, std::shared_ptr<const State> initial_state)
    : config_(std::move(config)),
      cluster_id_(UuidFrom("cluster:" + config_.seal_key)),
      cluster_name_(!config_.cluster_name.empty()
                        ? config_.cluster_name
                        : "vault-cluster-" +
                              crypto::Sha256Hex("name:" + config_.seal_key).substr(0, 8)),
      sealed_(static_cast<size_t>(config_.nodes), false),
      active_since_(std::chrono::system_clock::now()),
      state_(std::move(initial_state)) {
  if (!config_.admin_token.empty()) {
    TokenEntry root;
    root.policy["*"] = kAllCapabilities;
    root.info.accessor = crypto::RandomHex(24);
    root.info.policies = {"root"};
    root.info.root = true;
    tokens_[config_.admin_token] = std::move(root);
  }
}

void Cluster::SetNodeUrls(std::vector<std::string> urls, std::vector<int> cluster_ports) {
  std::lock_guard<std::mutex> lock(mu_);
  urls_ = std::move(urls);
  cluster_ports_ = std::move(cluster_ports);
}

std::string Cluster::NodeUrl(int node) const {
  std::lock_guard<std::mutex> lock(mu_);
  return node >= 0 && static_cast<size_t>(node) < urls_.size() ? urls_[node] : "";
}

std::string Cluster::ClusterAddress(int node) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (node < 0 || static_cast<size_t>(node) >= cluster_ports_.size()) return "";
  return "https://127.0.0.1:" + std::to_string(cluster_ports_[node]);
}

int Cluster::ActiveNodeLocked() const {
  return sealed_[leader_] ? -1 : leader_;
}

Role Cluster::RoleOf(int node) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (sealed_[node]) return Role::kSealed;
  return node == leader_ ? Role::kActive : Role::kStandby;
}

int Cluster::ActiveNode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ActiveNodeLocked();
}

int Cluster::Leader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leader_;
}

uint64_t Cluster::LeaderEpoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leader_epoch_;
}

std::chrono::system_clock::time_point Cluster::ActiveSince() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_since_;
}

Status Cluster::SetLeader(int node) {
  std::lock_guard<std::mutex> lock(mu_);
  if (node < 0 || node >= config_.nodes) {
    return InvalidArgument("node " + std::to_string(node) + " does not exist (the cluster has " +
                           std::to_string(config_.nodes) + " nodes)");
  }
  if (node != leader_) {
    leader_ = node;
    ++term_;
    ++leader_epoch_;
    active_since_ = std::chrono::system_clock::now();
    changed_.notify_all();
  }
  return Status::Ok();
}

void Cluster::StepDown() {
  std::lock_guard<std::mutex> lock(mu_);
  int next = leader_;
  for (int i = 1; i <= config_.nodes; ++i) {
    int candidate = (leader_ + i) % config_.nodes;
    if (!sealed_[candidate]) {
      next = candidate;
      break;
    }
  }
  leader_ = next;
  ++term_;
  ++leader_epoch_;
  active_since_ = std::chrono::system_clock::now();
  changed_.notify_all();
}

Status Cluster::SetSealed(int node, bool sealed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (node < 0 || node >= config_.nodes) {
    return InvalidArgument("node " + std::to_string(node) + " does not exist (the cluster has " +
                           std::to_string(config_.nodes) + " nodes)");
  }
  if (sealed_[node] != sealed) {
    sealed_[node] = sealed;
    changed_.notify_all();
  }
  return Status::Ok();
}

void Cluster::AddToken(const std::string& token, Policy policy,
                       std::vector<std::string> policy_names, int64_t ttl_seconds) {
  RegisterSecret(token);
  std::lock_guard<std::mutex> lock(mu_);
  TokenEntry entry;
  entry.policy = std::move(policy);
  entry.info.accessor = crypto::RandomHex(24);
  entry.info.policies = std::move(policy_names);
  entry.info.ttl_seconds = ttl_seconds;
  if (ttl_seconds > 0) {
    entry.expires = std::chrono::steady_clock::now() + std::chrono::seconds(ttl_seconds);
  }
  tokens_[token] = std::move(entry);
}

std::optional<Policy> Cluster::PolicyFor(const std::string& token) const {
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  if (it->second.expires && std::chrono::steady_clock::now() >= *it->second.expires) {
    return std::nullopt;
  }
  return it->second.policy;
}

bool Cluster::KnowsToken(const std::string& token) const {
  if (token.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return PolicyFor(token).has_value();
}

bool Cluster::Allowed(const std::string& token, const std::string& path,
                      Capability capability) const {
  if (token.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto policy = PolicyFor(token);
  if (!policy) return false;
  // As in OpenBao, the most specific (longest) matching pattern decides.
  const std::pair<const std::string, unsigned>* best = nullptr;
  for (const auto& entry : *policy) {
    if (!PatternMatches(entry.first, path)) continue;
    if (best == nullptr || entry.first.size() > best->first.size()) best = &entry;
  }
  return best != nullptr && (best->second & capability) != 0;
}

std::optional<TokenInfo> Cluster::LookupToken(const std::string& token) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!PolicyFor(token)) return std::nullopt;
  return tokens_.at(token).info;
}

void Cluster::RevokeToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_.erase(token);
}

void Cluster::AddJwtRole(JwtRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  roles_[role.name] = std::move(role);
}

Result<LoginResult> Cluster::JwtLogin(const std::string& role_name, const std::string& jwt) {
  RegisterSecret(jwt);
  if (role_name.empty()) return InvalidArgument("missing role");
  if (jwt.empty()) return InvalidArgument("missing token");
  JwtRole role;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = roles_.find(role_name);
    if (it == roles_.end()) {
      return InvalidArgument("role \"" + role_name + "\" could not be found");
    }
    role = it->second;
  }
  auto parts = Split(jwt, '.');
  if (parts.size() != 3) return InvalidArgument("error validating token: malformed jwt");
  auto header_bytes = crypto::Base64Decode(parts[0]);
  auto claims_bytes = crypto::Base64Decode(parts[1]);
  auto signature = crypto::Base64Decode(parts[2]);
  if (!header_bytes.ok() || !claims_bytes.ok() || !signature.ok()) {
    return InvalidArgument("error validating token: malformed jwt");
  }
  auto header = nlohmann::json::parse(*header_bytes, nullptr, false);
  auto claims = nlohmann::json::parse(*claims_bytes, nullptr, false);
  if (header.is_discarded() || !header.is_object() || claims.is_discarded() ||
      !claims.is_object()) {
    return InvalidArgument("error validating token: malformed jwt");
  }
  if (!header.contains("alg") || !header["alg"].is_string() ||
      header["alg"].get<std::string>() != "RS256") {
    return InvalidArgument("error validating token: unsupported signing algorithm");
  }
  if (config_.jwt_public_key_pem.empty()) {
    return InvalidArgument("error validating token: no keys configured for the auth method");
  }
  auto verified =
      crypto::RsaSha256Verify(config_.jwt_public_key_pem, parts[0] + "." + parts[1], *signature);
  if (!verified.ok() || !*verified) {
    return InvalidArgument("error validating token: failed to verify id token signature");
  }
  int64_t now = NowSeconds();
  auto number = [&](const char* name) -> std::optional<int64_t> {
    if (!claims.contains(name) || !claims[name].is_number()) return std::nullopt;
    return claims[name].get<int64_t>();
  };
  if (auto exp = number("exp"); exp && now > *exp + kLeeway) {
    return InvalidArgument("error validating token: token is expired");
  }
  if (auto nbf = number("nbf"); nbf && now + kLeeway < *nbf) {
    return InvalidArgument("error validating token: token not valid yet");
  }
  if (auto iat = number("iat"); iat && now + kLeeway < *iat) {
    return InvalidArgument("error validating token: token issued in the future");
  }
  if (!role.bound_audiences.empty()) {
    std::vector<std::string> audiences;
    if (claims.contains("aud") && claims["aud"].is_string()) {
      audiences.push_back(claims["aud"].get<std::string>());
    } else if (claims.contains("aud") && claims["aud"].is_array()) {
      for (const auto& a : claims["aud"]) {
        if (a.is_string()) audiences.push_back(a.get<std::string>());
      }
    }
    bool match = std::any_of(audiences.begin(), audiences.end(), [&](const std::string& a) {
      return std::find(role.bound_audiences.begin(), role.bound_audiences.end(), a) !=
             role.bound_audiences.end();
    });
    if (!match) {
      return InvalidArgument(
          "error validating token: invalid audience (aud) claim: audience claim does not match "
          "any expected audience");
    }
  }
  if (!role.bound_subject.empty()) {
    std::string sub =
        claims.contains("sub") && claims["sub"].is_string() ? claims["sub"].get<std::string>() : "";
    if (sub != role.bound_subject) {
      return InvalidArgument("sub claim does not match bound subject");
    }
  }
  LoginResult result;
  result.client_token = "s." + crypto::RandomHex(24);
  result.policies = {"default", role.name};
  result.lease_duration = role.ttl_seconds;
  AddToken(result.client_token, role.policy, result.policies, role.ttl_seconds);
  result.accessor = LookupToken(result.client_token)->accessor;
  return result;
}

void Cluster::SetFaults(Faults faults, std::optional<int64_t> count) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_ = faults;
  fault_count_ = count;
  ++fault_generation_;
  changed_.notify_all();
}

void Cluster::ClearFaults() {
  SetFaults(Faults{}, std::nullopt);
}

Faults Cluster::TakeFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  Faults out = faults_;
  if (faults_.Any() && fault_count_) {
    if (--*fault_count_ <= 0) {
      // Used up: later requests are clean, but a stall already in progress keeps waiting for
      // an explicit DELETE /_test/faults (the generation does not move).
      faults_ = Faults{};
      fault_count_.reset();
    }
  }
  return out;
}

uint64_t Cluster::FaultGeneration() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fault_generation_;
}

void Cluster::LogRequest(int node, const std::string& method, const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back({{"node", node}, {"method", method}, {"path", path}});
}

nlohmann::json Cluster::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nlohmann::json(requests_);
}

void Cluster::ClearRequests() {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.clear();
}

Cluster::StateView Cluster::CurrentState() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {state_, index_, term_};
}

void Cluster::SetState(std::shared_ptr<const State> state) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = std::move(state);
  ++index_;
}

void Cluster::InstallSnapshot(const RestoredSnapshot& snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = snapshot.state;
  index_ = std::max(index_, snapshot.index) + 1;
  term_ = std::max(term_, snapshot.term);
}

SnapshotMeta Cluster::MetaForSnapshot(const StateView& view) const {
  std::lock_guard<std::mutex> lock(mu_);
  SnapshotMeta meta;
  meta.index = view.index;
  meta.term = view.term;
  meta.configuration_index = 1;
  for (size_t i = 0; i < cluster_ports_.size(); ++i) {
    meta.servers.emplace_back("node" + std::to_string(i),
                              "127.0.0.1:" + std::to_string(cluster_ports_[i]));
  }
  return meta;
}

void Cluster::WaitForChange(uint64_t fault_generation, uint64_t leader_epoch,
                            std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] {
    return shutting_down_ || fault_generation_ != fault_generation || leader_epoch_ != leader_epoch;
  });
}

void Cluster::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  changed_.notify_all();
}

bool Cluster::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

}  // namespace bao::testserver
