#include "openbao/client.h"

#include <nlohmann/json.hpp>
#include <thread>

#include "common/files.h"
#include "common/log.h"
#include "common/redact.h"

namespace bao::openbao {
namespace {

using nlohmann::json;

std::string TrimSlash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string RoleOfHealth(long status) {
  switch (status) {
    case 200: return "active";
    case 429: return "standby";
    case 472: return "disaster-recovery secondary";
    case 473: return "performance standby";
    case 501: return "not initialized";
    case 503: return "sealed";
    default: return "HTTP " + std::to_string(status);
  }
}

}  // namespace

Result<std::string> ReadSecretFile(const std::string& path, const std::string& what) {
  Result<std::optional<std::string>> r = ReadOptionalTrimmed(path);
  if (!r.ok())
    return InvalidArgument("cannot read the " + what + " file " + path + ": " +
                           r.status().message());
  if (!r->has_value()) return InvalidArgument("the " + what + " file " + path + " does not exist");
  if ((*r)->empty()) return InvalidArgument("the " + what + " file " + path + " is empty");
  RegisterSecret(**r);
  return **r;
}

std::string NodeState::Describe() const {
  if (!reachable) return "unreachable: " + error;
  return sealed ? "sealed" : RoleOfHealth(health_status);
}

Client::Client(ConnectionConfig config, Context ctx)
    : config_(std::move(config)), ctx_(std::move(ctx)) {
  for (std::string& a : config_.addresses) a = TrimSlash(a);
}

http::Request Client::NewRequest(const std::string& method, const std::string& url) const {
  http::Request req;
  req.method = method;
  req.url = url;
  req.tls = config_.tls;
  req.timeout = config_.request_timeout;
  req.connect_timeout = std::chrono::milliseconds(5000);
  req.ctx = ctx_;
  req.headers.push_back({"X-Vault-Request", "true"});
  if (!token_.empty()) req.headers.push_back({"X-Vault-Token", token_});
  return req;
}

Result<std::string> Client::FindLeader() {
  if (config_.addresses.empty()) {
    return InvalidArgument("no OpenBao address given (--bao-addr or BAO_ADDR)");
  }
  auto deadline = std::chrono::steady_clock::now() + config_.leader_wait;
  auto backoff = std::chrono::milliseconds(250);
  while (true) {
    std::vector<std::string> seen;
    bool reached_any = false;
    auto probe_health = [&](const std::string& addr, std::string* role) {
      NodeState node = Probe(addr, /*with_leader=*/false, config_.request_timeout);
      reached_any = reached_any || node.reachable;
      *role = node.reachable ? node.Describe() : node.error;
      return node.active();
    };
    for (const std::string& addr : config_.addresses) {
      Result<http::Response> r = http_.Do(NewRequest("GET", addr + "/v1/sys/leader"));
      if (!r.ok()) {
        if (r.status().code() == Code::kFailedPrecondition) return r.status();  // TLS
        seen.push_back(addr + ": " + r.status().message());
        continue;
      }
      reached_any = true;
      json j = json::parse(r->body, nullptr, false);
      if (r->status != 200 || !j.is_object()) {
        seen.push_back(addr + ": /v1/sys/leader answered " + std::to_string(r->status) + " (" +
                       http::ErrorSummary(*r) + ")");
        continue;
      }
      if (j.value("is_self", false)) {
        std::string role;
        if (probe_health(addr, &role)) return addr;
        seen.push_back(addr + ": claims leadership but health says " + role);
        continue;
      }
      std::string leader = j.contains("leader_address") && j["leader_address"].is_string()
                               ? TrimSlash(j["leader_address"].get<std::string>())
                               : "";
      if (leader.empty()) {
        seen.push_back(addr + ": knows no leader");
        continue;
      }
      std::string role;
      if (probe_health(leader, &role)) {
        log::Debug("leader found", {{"asked", addr}, {"leader", leader}});
        return leader;
      }
      seen.push_back(addr + ": names leader " + leader + ", which is " + role);
    }
    // The announced leader may be unreachable under that name; any given address that is
    // itself active will do.
    for (const std::string& addr : config_.addresses) {
      std::string role;
      if (probe_health(addr, &role)) return addr;
    }
    std::string summary;
    for (const std::string& s : seen) summary += (summary.empty() ? "" : "; ") + s;
    if (Status s = ctx_.Check("looking for the OpenBao leader"); !s.ok()) return s;
    if (std::chrono::steady_clock::now() + backoff > deadline) {
      if (!reached_any) {
        return Unavailable("no OpenBao node could be reached: " + summary);
      }
      return FailedPrecondition("no active OpenBao node found within " +
                                std::to_string(config_.leader_wait.count() / 1000) +
                                "s: " + summary);
    }
    log::Warn("no active OpenBao node yet, retrying", {{"detail", summary}});
    if (Status s = ctx_.SleepFor(backoff, "looking for the OpenBao leader"); !s.ok()) return s;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

Status Client::Login(const std::string& leader, const AuthConfig& auth) {
  if (!auth.token.empty()) {
    RegisterSecret(auth.token);
    token_ = auth.token;
    return Status::Ok();
  }
  if (auth.jwt_role.empty()) {
    return InvalidArgument(
        "no OpenBao credentials: give a token (--bao-token, --bao-token-file or BAO_TOKEN) or "
        "a JWT role (--jwt-role)");
  }
  BAO_ASSIGN_OR_RETURN(std::string jwt, ReadSecretFile(auth.jwt_token_file, "JWT"));
  std::string mount = auth.jwt_mount.empty() ? kDefaultJwtMount : auth.jwt_mount;
  http::Request req = NewRequest("POST", leader + "/v1/auth/" + mount + "/login");
  req.headers.push_back({"Content-Type", "application/json"});
  req.body = json{{"role", auth.jwt_role}, {"jwt", jwt}}.dump();
  Result<http::Response> r = http_.Do(req);
  if (!r.ok()) return r.status().WithContext("JWT login");
  std::string where = "JWT login at auth/" + mount + " with role \"" + auth.jwt_role + "\"";
  if (!r->ok()) {
    std::string reason = http::ErrorSummary(*r);
    if (r->status == 400 || r->status == 401 || r->status == 403) {
      return Unauthenticated(where + " was refused (" + std::to_string(r->status) + "): " + reason);
    }
    return Unavailable(where + " failed (" + std::to_string(r->status) + "): " + reason);
  }
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("auth") || !j["auth"].is_object() ||
      !j["auth"].contains("client_token") || !j["auth"]["client_token"].is_string()) {
    return Internal(where + " answered without auth.client_token");
  }
  token_ = j["auth"]["client_token"].get<std::string>();
  RegisterSecret(token_);
  if (token_.empty()) return Internal(where + " returned an empty token");
  log::Info("logged in to OpenBao", {{"method", "jwt"}, {"role", auth.jwt_role}});
  return Status::Ok();
}

Status Client::StreamSnapshot(const std::string& leader,
                              const std::function<Status(std::string_view)>& sink) {
  if (token_.empty()) return Unauthenticated("not logged in to OpenBao");
  http::Request req = NewRequest("GET", leader + "/v1/sys/storage/raft/snapshot");
  req.timeout = std::chrono::milliseconds(0);
  req.stall_time = config_.stall_timeout;
  req.on_body = sink;
  Result<http::Response> r = http_.Do(req);
  if (!r.ok()) {
    if (ctx_.done()) return r.status();  // cancelled or out of time: said as such
    if (r.status().code() == Code::kUnavailable || r.status().code() == Code::kDeadlineExceeded) {
      return Error(Code::kUnavailable, r.status().reason(),
                   "the snapshot stream from " + leader + " broke off: " + r.status().message());
    }
    return r.status();
  }
  if (r->ok()) return Status::Ok();
  std::string reason = http::ErrorSummary(*r);
  std::string what = "GET " + leader + "/v1/sys/storage/raft/snapshot: ";
  switch (r->status) {
    case 403:
      return PermissionDenied(what +
                              "permission denied; the token needs the \"read\" "
                              "capability on sys/storage/raft/snapshot (" +
                              reason + ")");
    case 401: return Unauthenticated(what + reason);
    case 307:
    case 503:
      return FailedPrecondition(what + "the node is not the active node (" +
                                std::to_string(r->status) + ": " + reason + ")");
    default: return Unavailable(what + "HTTP " + std::to_string(r->status) + ": " + reason);
  }
}

Status Client::Restore(const std::string& leader, bool force,
                       const std::function<Result<size_t>(char*, size_t)>& body_reader) {
  if (token_.empty()) return Unauthenticated("not logged in to OpenBao");
  std::string path =
      force ? "/v1/sys/storage/raft/snapshot-force" : "/v1/sys/storage/raft/snapshot";
  http::Request req = NewRequest("POST", leader + path);
  req.timeout = std::chrono::milliseconds(0);
  req.stall_time = config_.stall_timeout;
  req.headers.push_back({"Content-Type", "application/octet-stream"});
  req.body_reader = body_reader;
  req.expect_continue = true;
  Result<http::Response> r = http_.Do(req);
  if (!r.ok()) return r.status();
  if (r->ok()) return Status::Ok();
  std::string reason = http::ErrorSummary(*r);
  std::string what = "POST " + leader + path + ": ";
  switch (r->status) {
    case 400: return InvalidArgument(what + "OpenBao refused the snapshot: " + reason);
    case 403:
      return PermissionDenied(what +
                              "permission denied; the token needs the \"update\" "
                              "capability on " +
                              path.substr(4) + " (" + reason + ")");
    case 401: return Unauthenticated(what + reason);
    case 307:
    case 503: return FailedPrecondition(what + "the node is not the active node (" + reason + ")");
    case 500: return DataLoss(what + "OpenBao could not read the snapshot: " + reason);
    default: return Unavailable(what + "HTTP " + std::to_string(r->status) + ": " + reason);
  }
}

NodeState Client::Probe(const std::string& address, bool with_leader,
                        std::chrono::milliseconds timeout) {
  NodeState state;
  state.address = TrimSlash(address);
  // Ask for the real role in the status code, also from sealed and uninitialised nodes.
  http::Request health = NewRequest("GET", state.address + "/v1/sys/health");
  health.timeout = timeout;
  health.connect_timeout = std::min(timeout, health.connect_timeout);
  Result<http::Response> r = http_.Do(health);
  if (!r.ok()) {
    state.error = r.status().message();
    return state;
  }
  json h = json::parse(r->body, nullptr, false);
  if (!h.is_object()) {
    state.error = "sys/health answered " + std::to_string(r->status) + " without JSON";
    return state;
  }
  state.reachable = true;
  state.health_status = r->status;
  state.sealed = h.value("sealed", r->status == 503);
  state.standby = h.value("standby", false);
  if (h.contains("cluster_id") && h["cluster_id"].is_string()) {
    state.cluster_id = h["cluster_id"].get<std::string>();
  }
  if (!with_leader || state.sealed) return state;
  http::Request leader = NewRequest("GET", state.address + "/v1/sys/leader");
  leader.timeout = timeout;
  leader.connect_timeout = health.connect_timeout;
  Result<http::Response> l = http_.Do(leader);
  if (!l.ok() || l->status != 200) return state;
  json j = json::parse(l->body, nullptr, false);
  if (!j.is_object()) return state;
  state.leader_answered = true;
  state.is_self = j.value("is_self", false);
  if (j.contains("raft_applied_index") && j["raft_applied_index"].is_number_unsigned()) {
    state.applied_index = j["raft_applied_index"].get<uint64_t>();
  }
  return state;
}

std::string Client::LeaderChangedFrom(const std::string& previous) {
  ConnectionConfig quick = config_;
  quick.leader_wait = std::chrono::milliseconds(0);
  Client probe(quick);
  Result<std::string> now = probe.FindLeader();
  if (now.ok() && *now != previous) return *now;
  return "";
}

}  // namespace bao::openbao
