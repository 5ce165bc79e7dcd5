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

std::string_view SchemeOf(std::string_view url) {
  size_t sep = url.find("://");
  return sep == std::string_view::npos ? std::string_view() : url.substr(0, sep);
}

Status ConfigError(std::string message) {
  return Error(Code::kInvalidArgument, Reason::kInvalidValue, std::move(message))
      .WithStage(Stage::kConfig);
}

}  // namespace

Status ValidateConnection(const ConnectionConfig& config) {
  if (config.addresses.empty()) {
    return ConfigError("no OpenBao address given (--bao-addr or BAO_ADDR)");
  }
  for (const std::string& a : config.addresses) {
    std::string_view scheme = SchemeOf(a);
    if (scheme != "http" && scheme != "https") {
      return ConfigError("OpenBao address \"" + UrlForDisplay(a) +
                         "\" must start with https:// (or http://)");
    }
    std::string_view rest = std::string_view(a).substr(scheme.size() + 3);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    if (authority.find('@') != std::string_view::npos) {
      return ConfigError("OpenBao address " + UrlForDisplay(a) +
                         " contains user-info (user:password@); OpenBao authenticates with a "
                         "token: remove it from the address");
    }
    if (authority.empty()) return ConfigError("OpenBao address \"" + UrlForDisplay(a) + "\" has no host");
    if (rest.find_first_of("?#") != std::string_view::npos) {
      return ConfigError("OpenBao address " + UrlForDisplay(a) +
                         " has a query or fragment; give only scheme, host and port");
    }
  }
  if (!config.tls.ca_file.empty() && config.tls.ca_pem.empty()) {
    Result<std::optional<std::string>> ca = ReadOptionalTrimmed(config.tls.ca_file);
    if (!ca.ok() || !ca->has_value() || (*ca)->empty()) {
      return ConfigError("the CA file " + config.tls.ca_file +
                         (!ca.ok() ? " cannot be read: " + ca.status().message()
                          : !ca->has_value() ? " does not exist"
                                             : " is empty") +
                         " (--bao-cacert / BAO_CACERT)");
    }
  }
  return Status::Ok();
}

Result<std::string> ReadSecretFile(const std::string& path, const std::string& what) {
  Result<std::optional<std::string>> r = ReadOptionalTrimmed(path);
  if (!r.ok()) {
    return ConfigError("cannot read the " + what + " file " + path + ": " + r.status().message());
  }
  if (!r->has_value()) return ConfigError("the " + what + " file " + path + " does not exist");
  if ((*r)->empty()) return ConfigError("the " + what + " file " + path + " is empty");
  RegisterSecret(**r);
  return **r;
}

std::string NodeState::Describe() const {
  if (!reachable) return "unreachable: " + error;
  return sealed ? "sealed" : RoleOfHealth(health_status);
}

Client::Client(ConnectionConfig config) : config_(std::move(config)) {
  for (std::string& a : config_.addresses) a = TrimSlash(a);
}

http::Request Client::NewRequest(const Context& ctx, const std::string& method,
                                 const std::string& url) const {
  http::Request req;
  req.ctx = ctx;
  req.method = method;
  req.url = url;
  req.tls = config_.tls;
  req.timeout = config_.request_timeout;
  req.connect_timeout = std::chrono::milliseconds(5000);
  req.headers.push_back({"X-Vault-Request", "true"});
  if (!token_.empty()) req.headers.push_back({"X-Vault-Token", token_});
  return req;
}

Result<std::string> Client::FindLeader(const Context& ctx) {
  BAO_RETURN_IF_ERROR(ValidateConnection(config_));
  auto found = [](const std::string& leader) -> Result<std::string> {
    log::Info("using the active OpenBao node", {{"leader", leader}});
    return leader;
  };
  auto deadline = std::chrono::steady_clock::now() + config_.leader_wait;
  auto backoff = std::chrono::milliseconds(250);
  while (true) {
    std::vector<std::string> seen;
    bool reached_any = false;
    auto probe_health = [&](const std::string& addr, std::string* role) {
      NodeState node = Probe(ctx, addr, /*with_leader=*/false, config_.request_timeout);
      reached_any = reached_any || node.reachable;
      *role = node.reachable ? node.Describe() : node.error;
      return node.active();
    };
    for (const std::string& addr : config_.addresses) {
      Result<http::Response> r = http_.Do(NewRequest(ctx, "GET", addr + "/v1/sys/leader"));
      if (!r.ok()) {
        if (r.status().reason() == Reason::kCancelled) return r.status();
        if (r.status().code() == Code::kFailedPrecondition) {  // TLS
          return r.status().WithReason(Reason::kTlsVerification);
        }
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
        if (probe_health(addr, &role)) return found(addr);
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
      if (SchemeOf(addr) == "https" && SchemeOf(leader) != "https") {
        // The token must not leave over a weaker channel than the one the user chose.
        seen.push_back(addr + ": names leader " + UrlForDisplay(leader) +
                       ", refused: not https like the address given");
        continue;
      }
      std::string role;
      if (probe_health(leader, &role)) {
        log::Debug("leader found", {{"asked", addr}, {"leader", leader}});
        return found(leader);
      }
      seen.push_back(addr + ": names leader " + leader + ", which is " + role);
    }
    // The announced leader may be unreachable under that name; any given address that is
    // itself active will do.
    for (const std::string& addr : config_.addresses) {
      std::string role;
      if (probe_health(addr, &role)) return found(addr);
    }
    std::string summary;
    for (const std::string& s : seen) summary += (summary.empty() ? "" : "; ") + s;
    BAO_RETURN_IF_ERROR(ctx.Check("looking for the OpenBao leader"));
    if (std::chrono::steady_clock::now() + backoff > deadline) {
      if (!reached_any) {
        return Error(Code::kUnavailable, Reason::kUnreachable,
                     "no OpenBao node could be reached: " + summary);
      }
      return FailedPrecondition("no active OpenBao node found within " +
                                std::to_string(config_.leader_wait.count() / 1000) +
                                "s: " + summary);
    }
    log::Warn("no active OpenBao node yet, retrying", {{"detail", summary}});
    BAO_RETURN_IF_ERROR(ctx.SleepFor(backoff, "looking for the OpenBao leader"));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

Status Client::Login(const Context& ctx, const std::string& leader, const AuthConfig& auth) {
  if (!auth.token.empty()) {
    RegisterSecret(auth.token);
    token_ = auth.token;
    return Status::Ok();
  }
  if (auth.jwt_role.empty()) {
    return Error(Code::kInvalidArgument, Reason::kNoCredentials,
                 "no OpenBao credentials: give a token (--bao-token-file or BAO_TOKEN) or "
                 "a JWT role (--jwt-role)")
        .WithStage(Stage::kConfig);
  }
  BAO_ASSIGN_OR_RETURN(std::string jwt, ReadSecretFile(auth.jwt_token_file, "JWT"));
  std::string mount = auth.jwt_mount.empty() ? kDefaultJwtMount : auth.jwt_mount;
  http::Request req = NewRequest(ctx, "POST", leader + "/v1/auth/" + mount + "/login");
  req.headers.push_back({"Content-Type", "application/json"});
  req.body = json{{"role", auth.jwt_role}, {"jwt", jwt}}.dump();
  Result<http::Response> r = http_.Do(req);
  if (!r.ok()) return r.status().WithContext("JWT login");
  std::string where = "JWT login at auth/" + mount + " with role \"" + auth.jwt_role + "\"";
  if (!r->ok()) {
    std::string reason = http::ErrorSummary(*r);
    if (r->status == 400 || r->status == 401 || r->status == 403) {
      return Error(Code::kUnauthenticated, Reason::kUnauthenticated,
                   where + " was refused (" + std::to_string(r->status) + "): " + reason)
          .WithHttpStatus(static_cast<int>(r->status));
    }
    return Error(Code::kUnavailable, Reason::kServerError,
                 where + " failed (" + std::to_string(r->status) + "): " + reason)
        .WithHttpStatus(static_cast<int>(r->status));
  }
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("auth") || !j["auth"].is_object() ||
      !j["auth"].contains("client_token") || !j["auth"]["client_token"].is_string()) {
    return Error(Code::kInternal, Reason::kBadResponse,
                 where + " answered without auth.client_token");
  }
  token_ = j["auth"]["client_token"].get<std::string>();
  RegisterSecret(token_);
  if (token_.empty()) return Internal(where + " returned an empty token");
  log::Info("logged in to OpenBao", {{"method", "jwt"}, {"role", auth.jwt_role}});
  return Status::Ok();
}

Status Client::Forbidden(const Context& ctx, const std::string& leader, const std::string& what,
                         const std::string& capability, const std::string& path,
                         const std::string& reason) {
  Result<http::Response> self =
      http_.Do(NewRequest(ctx, "GET", leader + "/v1/auth/token/lookup-self"));
  const std::string needs = "the \"" + capability + "\" capability on " + path;
  if (self.ok() && self->ok()) {
    return Error(Code::kPermissionDenied, Reason::kPermissionDenied,
                 what + "permission denied; the token is valid but needs " + needs + " (" +
                     reason + ")")
        .WithHttpStatus(403)
        .WithStage(Stage::kAuth);
  }
  // OpenBao answers 403 both for a token it does not know and for a missing capability; a token
  // without the default policy cannot look itself up either, so both remain possible.
  return Error(Code::kPermissionDenied, Reason::kPermissionDenied,
               what + "permission denied: the token is unknown, expired or revoked, or it needs " +
                   needs + " (it cannot look itself up, so which one is not known; " + reason +
                   ")")
      .WithHttpStatus(403)
      .WithStage(Stage::kAuth);
}

Status Client::StreamSnapshot(const Context& ctx, const std::string& leader,
                              const std::function<Status(std::string_view)>& sink) {
  if (token_.empty()) {
    return Error(Code::kUnauthenticated, Reason::kNoCredentials, "not logged in to OpenBao")
        .WithStage(Stage::kAuth);
  }
  http::Request req = NewRequest(ctx, "GET", leader + "/v1/sys/storage/raft/snapshot");
  req.timeout = std::chrono::milliseconds(0);
  req.stall_time = config_.stall_timeout;
  req.on_body = sink;
  Result<http::Response> r = http_.Do(req);
  if (!r.ok()) {
    const Status& e = r.status();
    if (e.reason() != Reason::kCancelled &&
        (e.code() == Code::kUnavailable || e.code() == Code::kDeadlineExceeded)) {
      return Status(Code::kUnavailable,
                    "the snapshot stream from " + leader + " broke off: " + e.message())
          .WithReason(e.reason() == Reason::kUnspecified ? Reason::kUnreachable : e.reason());
    }
    return e;
  }
  if (r->ok()) return Status::Ok();
  std::string reason = http::ErrorSummary(*r);
  std::string what = "GET " + leader + "/v1/sys/storage/raft/snapshot: ";
  const int code = static_cast<int>(r->status);
  switch (code) {
    case 403:
      return Forbidden(ctx, leader, what, "read", "sys/storage/raft/snapshot", reason);
    case 401:
      return Error(Code::kUnauthenticated, Reason::kUnauthenticated, what + reason)
          .WithHttpStatus(code)
          .WithStage(Stage::kAuth);
    case 307:
      return FailedPrecondition(what + "the node is not the active node (" +
                                std::to_string(code) + ": " + reason + ")")
          .WithHttpStatus(code)
          .WithStage(Stage::kLeader);
    case 429:  // a rate-limit quota: come back later
      return Error(Code::kUnavailable, Reason::kThrottled,
                   what + "HTTP " + std::to_string(code) + ": " + reason)
          .WithHttpStatus(code);
    default:
      return Error(Code::kUnavailable, code >= 500 ? Reason::kServerError : Reason::kBadResponse,
                   what + "HTTP " + std::to_string(code) + ": " + reason)
          .WithHttpStatus(code);
  }
}

Status Client::Restore(const Context& ctx, const std::string& leader, bool force,
                       const std::function<Result<size_t>(char*, size_t)>& body_reader) {
  if (token_.empty()) {
    return Error(Code::kUnauthenticated, Reason::kNoCredentials, "not logged in to OpenBao")
        .WithStage(Stage::kAuth);
  }
  std::string path =
      force ? "/v1/sys/storage/raft/snapshot-force" : "/v1/sys/storage/raft/snapshot";
  http::Request req = NewRequest(ctx, "POST", leader + path);
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
  const int code = static_cast<int>(r->status);
  switch (code) {
    case 400:
      return Error(Code::kInvalidArgument, Reason::kBadResponse,
                   what + "OpenBao refused the snapshot: " + reason)
          .WithHttpStatus(code)
          .WithStage(Stage::kVerify);
    case 403: return Forbidden(ctx, leader, what, "update", path.substr(4), reason);
    case 401:
      return Error(Code::kUnauthenticated, Reason::kUnauthenticated, what + reason)
          .WithHttpStatus(code)
          .WithStage(Stage::kAuth);
    case 307:
    case 503:
      return FailedPrecondition(what + "the node is not the active node (" + reason + ")")
          .WithHttpStatus(code)
          .WithStage(Stage::kLeader);
    case 500:
      return Error(Code::kDataLoss, Reason::kServerError,
                   what + "OpenBao could not read the snapshot: " + reason)
          .WithHttpStatus(code)
          .WithStage(Stage::kVerify);
    default:
      return Error(Code::kUnavailable, code > 500 ? Reason::kServerError : Reason::kBadResponse,
                   what + "HTTP " + std::to_string(code) + ": " + reason)
          .WithHttpStatus(code);
  }
}

NodeState Client::Probe(const Context& ctx, const std::string& address, bool with_leader,
                        std::chrono::milliseconds timeout) {
  NodeState state;
  state.address = TrimSlash(address);
  // Ask for the real role in the status code, also from sealed and uninitialised nodes.
  http::Request health = NewRequest(ctx, "GET", state.address + "/v1/sys/health");
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
  http::Request leader = NewRequest(ctx, "GET", state.address + "/v1/sys/leader");
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

std::string Client::LeaderChangedFrom(const Context& ctx, const std::string& previous) {
  ConnectionConfig quick = config_;
  quick.leader_wait = std::chrono::milliseconds(0);
  Client probe(quick);
  Result<std::string> now = probe.FindLeader(ctx);
  if (now.ok() && *now != previous) return *now;
  return "";
}

}  // namespace bao::openbao
