// The slice of the OpenBao HTTP API bao-backup uses: leader discovery, token and JWT
// authentication, the Raft snapshot stream, and restore. See docs/openbao.md.
//
// Not thread-safe: one Client per thread. Tokens and JWTs are registered with Redact() the
// moment they are read or received, and no message names them.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/context.h"
#include "common/status.h"
#include "http/client.h"

namespace bao::openbao {

constexpr const char* kDefaultJwtTokenFile = "/var/run/secrets/tokens/openbao-token";
constexpr const char* kDefaultJwtMount = "jwt-operator";

struct ConnectionConfig {
  std::vector<std::string> addresses;  // node API addresses to ask, e.g. https://bao-0...:8200
  http::TlsOptions tls;
  // How long to keep looking for an active node when none is found (sealed, election).
  std::chrono::milliseconds leader_wait{60000};
  std::chrono::milliseconds request_timeout{30000};  // for small API calls
  // A snapshot stream that moves no byte for this long fails as stalled.
  std::chrono::seconds stall_timeout{60};
};

struct AuthConfig {
  std::string token;  // a static token; wins when set
  std::string jwt_role;
  std::string jwt_token_file = kDefaultJwtTokenFile;
  std::string jwt_mount = kDefaultJwtMount;
};

// What one node said about itself: sys/health, and sys/leader when asked for.
struct NodeState {
  std::string address;
  bool reachable = false;  // answered sys/health with a known role
  std::string error;       // why not, when !reachable
  long health_status = 0;  // 200 active, 429 standby, 503 sealed, 501 not initialised, ...
  bool sealed = false;
  bool standby = false;
  std::string cluster_id;        // "" while sealed (OpenBao omits it)
  bool leader_answered = false;  // sys/leader answered in time (it blocks while a restore applies)
  bool is_self = false;
  uint64_t applied_index = 0;  // raft_applied_index from sys/leader

  bool active() const { return reachable && health_status == 200; }
  // "active", "standby", "sealed", "not initialized", or "unreachable: <error>".
  std::string Describe() const;
};

class Client {
 public:
  // Every method runs its requests and waits under the `ctx` it is given: once that is
  // cancelled or past its deadline, the call ends with kAborted (Reason::kCancelled) or
  // kDeadlineExceeded (Reason::kTimeout), as http::Client::Do() describes.
  explicit Client(ConnectionConfig config);

  // Finds the active node: asks each address for /v1/sys/leader and confirms the announced
  // leader with /v1/sys/health (falling back to any address whose health says "active"), and
  // keeps trying with backoff for up to `leader_wait`. Returns the leader's API address and logs
  // it. An announced leader whose scheme is weaker than the address asked (http announced by an
  // https node) is never used: the token would travel in clear text. Configuration problems
  // (ValidateConnection) come first, Stage::kConfig. kFailedPrecondition when no active node
  // appeared in time (the message lists what each address answered), kUnavailable
  // (Reason::kUnreachable) when no address could be reached at all, kFailedPrecondition with
  // Reason::kTlsVerification when a certificate was refused. Cancellation: kAborted,
  // Reason::kCancelled, as soon as `ctx` is cancelled (also while waiting between tries).
  Result<std::string> FindLeader(const Context& ctx);

  // Authenticates against `leader`. With a static token, only checks it is non-empty. With a
  // JWT role, reads the JWT file and logs in at auth/<mount>/login. kInvalidArgument when
  // neither is configured or the JWT file is missing/empty; kUnauthenticated when OpenBao
  // refuses (its reason is in the message).
  // Stage::kConfig with Reason::kNoCredentials / kInvalidValue for a missing credential or JWT
  // file; the others carry the HTTP status.
  Status Login(const Context& ctx, const std::string& leader, const AuthConfig& auth);

  // Streams GET /v1/sys/storage/raft/snapshot from `leader` into `sink`. Nothing is retried
  // here. Stage::kAuth: kPermissionDenied (403: the token lacks `read` on the path, or OpenBao
  // does not know it; see Forbidden()) or kUnauthenticated (401, no token). Stage::kLeader: kFailedPrecondition (307: not the active
  // node). Unstaged, with the HTTP status where there is one: kUnavailable (5xx with
  // Reason::kServerError; Reason::kUnreachable, kStalled when the connection failed, broke off
  // or stalled), kAborted/Reason::kCancelled, or the sink's own error.
  Status StreamSnapshot(const Context& ctx, const std::string& leader,
                        const std::function<Status(std::string_view)>& sink);

  // Streams `body_reader` into POST /v1/sys/storage/raft/snapshot (or snapshot-force) on
  // `leader`, announcing the body with `Expect: 100-continue` so that a node refusing the
  // request answers before the body is sent. When `body_reader` fails, the request is aborted
  // before it completes, so OpenBao never applies a partial archive, and that error is returned.
  // OpenBao's refusal wins over a broken upload: kInvalidArgument (400: another cluster's
  // snapshot without force), kPermissionDenied (403: the token lacks `update`, or is unknown),
  // kDataLoss (500: OpenBao could not read the archive), kFailedPrecondition (307/503), each
  // with OpenBao's own reason. Success (204/200) means OpenBao accepted the snapshot; it applies
  // it afterwards, in the background.
  // Stages: 400 and 500 are Stage::kVerify, 401/403 Stage::kAuth, 307/503 Stage::kLeader.
  Status Restore(const Context& ctx, const std::string& leader, bool force,
                 const std::function<Result<size_t>(char*, size_t)>& body_reader);

  // Asks `address` for sys/health (and sys/leader when `with_leader`), each bounded by
  // `timeout`. Never fails: an unreachable node or an unexpected answer is described in the
  // returned state (reachable = false).
  NodeState Probe(const Context& ctx, const std::string& address, bool with_leader,
                  std::chrono::milliseconds timeout);

  // The configured addresses (trailing slashes removed).
  const std::vector<std::string>& addresses() const { return config_.addresses; }

  // After a failed stream: the current leader if it differs from `previous`, else "".
  std::string LeaderChangedFrom(const Context& ctx, const std::string& previous);

 private:
  http::Request NewRequest(const Context& ctx, const std::string& method,
                           const std::string& url) const;
  // A 403 with a token (kPermissionDenied, Stage::kAuth): when the token can look itself up
  // (auth/token/lookup-self), it certainly lacks `capability`; otherwise the message names
  // both possibilities (OpenBao answers 403 for unknown tokens too).
  Status Forbidden(const Context& ctx, const std::string& leader, const std::string& what,
                   const std::string& capability, const std::string& path,
                   const std::string& reason);

  ConnectionConfig config_;
  http::Client http_;
  std::string token_;
};

// Checks what can be checked without the network: at least one address, each an http(s) URL
// without user-info, query or fragment (they could carry credentials, and OpenBao uses
// neither), and a readable CA file when one is named. kInvalidArgument, Stage::kConfig; the
// message never repeats user-info or a query.
Status ValidateConnection(const ConnectionConfig& config);

// Reads a token the way the CLI accepts it: the file's content, trimmed. kInvalidArgument
// (Stage::kConfig) when missing or empty. The value is registered with Redact().
Result<std::string> ReadSecretFile(const std::string& path, const std::string& what);

}  // namespace bao::openbao
