#include "server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "common/log.h"

namespace bao::testserver {
namespace {

using httplib::ContentReader;
using httplib::DataSink;
using httplib::Request;
using httplib::Response;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr size_t kMaxControlBody = 1 << 20;
constexpr const char* kSnapshotPath = "/v1/sys/storage/raft/snapshot";
constexpr const char* kSnapshotForcePath = "/v1/sys/storage/raft/snapshot-force";
// How long a connection closed after a refused upload stays half-open so that the response
// reaches the client before the reset that unread body bytes cause (Go's net/http waits
// 500 ms: rstAvoidanceDelay in closeWriteAndWait).
constexpr auto kRstAvoidanceDelay = std::chrono::milliseconds(500);

void SendJson(Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

void SendError(Response& res, int status, const std::string& message) {
  SendJson(res, status, json{{"errors", json::array({message})}});
}

std::string TokenOf(const Request& req) {
  std::string token = req.get_header_value("X-Vault-Token");
  if (!token.empty()) return token;
  std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) return auth.substr(7);
  return "";
}

bool ParamTrue(const Request& req, const std::string& name) {
  if (!req.has_param(name.c_str())) return false;
  std::string v = req.get_param_value(name.c_str());
  return v.empty() || v == "true" || v == "1" || v == "t" || v == "True";
}

int ParamCode(const Request& req, const std::string& name, int fallback) {
  if (!req.has_param(name.c_str())) return fallback;
  std::string v = req.get_param_value(name.c_str());
  char* end = nullptr;
  long code = std::strtol(v.c_str(), &end, 10);
  return (end != nullptr && *end == '\0' && code >= 100 && code <= 599) ? static_cast<int>(code)
                                                                        : fallback;
}

// `t` as Go's time.RFC3339Nano formats it in UTC: nanoseconds without trailing zeros
// ("2026-11-30T01:44:48.8531272Z"), no fraction when they are all zero.
std::string GoRfc3339Nano(std::chrono::system_clock::time_point t) {
  auto since = t.time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count();
  if (nanos < 0) {
    secs -= std::chrono::seconds(1);
    nanos += 1000000000;
  }
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (nanos != 0) {
    char frac[32];
    std::snprintf(frac, sizeof frac, ".%09lld", static_cast<long long>(nanos));
    std::string f = frac;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "Z";
}

// Reads a request body (at most `limit` bytes) or drains and discards it when `keep` is null.
// False when the body did not arrive completely or is too long.
bool ReadBody(const Request& req, const ContentReader* reader, std::string* keep,
              size_t limit = kMaxControlBody) {
  if (reader == nullptr) {
    if (keep != nullptr) *keep = req.body;
    return true;
  }
  bool too_long = false;
  bool ok = (*reader)([&](const char* data, size_t len) {
    if (keep == nullptr) return true;
    if (keep->size() + len > limit) {
      too_long = true;
      return false;
    }
    keep->append(data, len);
    return true;
  });
  return ok && !too_long;
}

// The socket of the connection a request arrived on, found by its addresses (cpp-httplib does
// not expose it). -1 when not found.
int FindConnectionFd(const Request& req) {
  if (req.ssl != nullptr) return SSL_get_fd(req.ssl);
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    sockaddr_in local{}, peer{};
    socklen_t llen = sizeof local, plen = sizeof peer;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &llen) != 0 ||
        local.sin_family != AF_INET || ntohs(local.sin_port) != req.local_port) {
      continue;
    }
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &plen) != 0 ||
        ntohs(peer.sin_port) != req.remote_port) {
      continue;
    }
    found = static_cast<int>(fd);
    break;
  }
  closedir(dir);
  return found;
}

// True when the peer has closed (or reset) the connection on `fd`.
bool PeerGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  char byte;
  return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

// Half-closes the connection after a response (close_notify for TLS, then FIN) and waits,
// without reading, until the peer closes or kRstAvoidanceDelay passes: the response then
// arrives before the reset that closing with unread request bytes causes.
void LingeringClose(int fd, SSL* ssl) {
  if (ssl != nullptr) SSL_shutdown(ssl);
  if (fd < 0) return;
  shutdown(fd, SHUT_WR);
  auto deadline = std::chrono::steady_clock::now() + kRstAvoidanceDelay;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return;
    pollfd p{fd, static_cast<short>(POLLRDHUP), 0};
    int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc != 0) return;  // the peer closed (or the socket failed)
  }
}

// Turns the answer already in `res` (status, headers, body) into one that is sent without
// reading the request body and then closes the connection, as OpenBao (Go's net/http) does
// when a handler refuses an upload it has not read: "Connection: close", the response, a
// half-close, a short wait, close. cpp-httplib ends a connection when a content provider
// fails, so the body goes out through a provider that reports failure once it is written.
void AnswerAndClose(const Request& req, Response& res) {
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  std::string type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type");
  res.headers.erase("Content-Length");
  res.set_header("Connection", "close");
  res.set_header("Content-Length", std::to_string(body->size()));
  int fd = FindConnectionFd(req);
  // The connection's own TLS session, used on the thread that serves it.
  SSL* ssl = const_cast<SSL*>(req.ssl);
  res.set_content_provider(type.empty() ? "text/plain" : type,
                           [body, fd, ssl](size_t /*offset*/, DataSink& sink) {
                             if (!body->empty()) sink.write(body->data(), body->size());
                             LingeringClose(fd, ssl);
                             return false;
                           });
}

bool IsSnapshotUpload(const Request& req) {
  return (req.method == "POST" || req.method == "PUT") &&
         (req.path == kSnapshotPath || req.path == kSnapshotForcePath);
}

// One snapshot download in progress: pulls the archive from a SnapshotWriter and applies the
// faults by byte offset of the gzip stream.
class SnapshotStream {
 public:
  SnapshotStream(Cluster& cluster, int node, const Request& req, Faults faults,
                 std::unique_ptr<SnapshotWriter> writer)
      : cluster_(cluster),
        node_(node),
        faults_(faults),
        writer_(std::move(writer)),
        epoch_(cluster.LeaderEpoch()),
        ssl_(req.ssl),
        local_port_(req.local_port),
        remote_port_(req.remote_port) {}

  bool Pump(DataSink& sink) {
    if (Interrupted()) return false;
    auto piece = writer_->Next();
    if (!piece.ok()) {
      log::Error("snapshot stream failed", {{"error", piece.status().ToString()}});
      return false;
    }
    if (piece->empty()) {
      // The terminating chunk: only a complete stream gets one.
      if (!sink.write("0\r\n\r\n", 5)) return false;
      sink.done();
      return true;
    }
    char* data = const_cast<char*>(piece->data());
    size_t len = piece->size();
    if (faults_.corrupt_at_byte && *faults_.corrupt_at_byte >= sent_ &&
        *faults_.corrupt_at_byte < sent_ + len) {
      data[*faults_.corrupt_at_byte - sent_] ^= 0x01;
    }
    size_t off = 0;
    while (true) {
      size_t left = len - off;
      std::optional<uint64_t> next;
      for (const auto& t : {faults_.cut_after_bytes, faults_.stall_after_bytes,
                            faults_.leader_change_after_bytes}) {
        if (t && *t >= sent_ && *t <= sent_ + left && (!next || *t < *next)) next = t;
      }
      size_t until = next ? static_cast<size_t>(*next - sent_) : left;
      if (until > 0 && !WriteChunk(sink, data + off, until)) return false;
      off += until;
      sent_ += until;
      if (!next) return true;
      if (faults_.cut_after_bytes == next) {
        log::Info("fault: cutting the snapshot stream", {{"after", std::to_string(sent_)}});
        return false;
      }
      if (faults_.leader_change_after_bytes == next) {
        log::Info("fault: leader change during the snapshot stream",
                  {{"after", std::to_string(sent_)}});
        cluster_.StepDown();
        return false;
      }
      if (!Stall()) return false;
      faults_.stall_after_bytes.reset();
    }
  }

 private:
  // True (and logged) when the stream must end: the server stops, leadership changed, or the
  // serving node or the active node was sealed, as a real node losing its role would do.
  bool Interrupted() {
    const char* why = nullptr;
    if (cluster_.shutting_down()) {
      why = "the server is stopping";
    } else if (cluster_.LeaderEpoch() != epoch_) {
      why = "leadership changed";
    } else if (cluster_.RoleOf(node_) == Role::kSealed || cluster_.ActiveNode() < 0) {
      why = "the node or the active node was sealed";
    }
    if (why != nullptr) {
      log::Info(std::string("snapshot stream cut: ") + why, {{"sent", std::to_string(sent_)}});
    }
    return why != nullptr;
  }

  // Sends nothing until the faults are changed (then resumes), or the client goes away, the
  // leader changes or the server stops (then false: the stream ends there).
  bool Stall() {
    log::Info("fault: stalling the snapshot stream", {{"after", std::to_string(sent_)}});
    uint64_t generation = cluster_.FaultGeneration();
    Request probe;
    probe.ssl = ssl_;
    probe.local_port = local_port_;
    probe.remote_port = remote_port_;
    int fd = FindConnectionFd(probe);
    while (true) {
      cluster_.WaitForChange(generation, epoch_, std::chrono::milliseconds(100));
      if (Interrupted()) return false;
      if (cluster_.FaultGeneration() != generation) return true;
      if (PeerGone(fd)) {
        log::Info("stalled snapshot stream: the client went away");
        return false;
      }
    }
  }

  // Chunked transfer coding by hand: cpp-httplib's own chunked provider copies every chunk
  // twice, which costs more than producing the snapshot.
  static bool WriteChunk(DataSink& sink, const char* data, size_t len) {
    char head[24];
    int n = std::snprintf(head, sizeof head, "%zx\r\n", len);
    return sink.write(head, static_cast<size_t>(n)) && sink.write(data, len) &&
           sink.write("\r\n", 2);
  }

  Cluster& cluster_;
  int node_;
  Faults faults_;
  std::unique_ptr<SnapshotWriter> writer_;
  uint64_t epoch_;
  const SSL* ssl_;
  int local_port_;
  int remote_port_;
  uint64_t sent_ = 0;
};

class Handler {
 public:
  explicit Handler(Cluster& cluster) : cluster_(cluster) {}

  void Handle(int node, const Request& req, Response& res, const ContentReader* reader) {
    if (req.path.rfind("/_test/", 0) == 0) {
      std::string body;
      if (!ReadBody(req, reader, &body)) {
        SendError(res, 400, "the request body is incomplete or larger than 1 MiB");
        return;
      }
      HandleControl(req, body, res);
      return;
    }
    cluster_.LogRequest(node, req.method, req.path);
    if (req.path == "/v1/sys/health" || req.path == "/v1/sys/leader") {
      Drain(req, reader);
      if (req.path == "/v1/sys/health") return Health(node, req, res);
      return Leader(node, res);
    }
    if (req.path.rfind("/v1/", 0) != 0) {
      Drain(req, reader);
      return SendJson(res, 404, json{{"errors", json::array()}});
    }
    if (Refuse(node, req, res)) {
      // A refused snapshot upload is answered without reading it, and the connection closes.
      if (IsSnapshotUpload(req)) return AnswerAndClose(req, res);
      return Drain(req, reader);
    }
    Serve(node, req, res, reader);
  }

  // Called for requests with "Expect: 100-continue" before their body is sent: a request
  // that will be refused anyway is answered at once (and logged), without "100 Continue",
  // and the connection closes, as OpenBao does, so that a client does not upload gigabytes to
  // a node that will not take them. Returns the status to answer (100 = go on).
  int EarlyAnswer(int node, const Request& req, Response& res) {
    if (req.path.rfind("/v1/", 0) != 0 || req.path == "/v1/sys/health" ||
        req.path == "/v1/sys/leader") {
      return 100;
    }
    Response answer;
    if (!Refuse(node, req, answer)) return 100;
    cluster_.LogRequest(node, req.method, req.path);
    res = answer;
    AnswerAndClose(req, res);
    return res.status;
  }

 private:
  // Answers a /v1/ request that must not reach Serve(): sealed node, standby without an active
  // node, a snapshot request whose token a standby does not know (307 to the active node, as
  // OpenBao 2.7.2 does) or whose token lacks the capability (403). False = serve it: the
  // active node serves everything, a standby serves snapshot requests from its own state and
  // any other request as the active node would (OpenBao forwards those).
  bool Refuse(int node, const Request& req, Response& res) {
    Role role = cluster_.RoleOf(node);
    if (role == Role::kSealed) {
      SendError(res, 503, "Vault is sealed");
      return true;
    }
    int active = cluster_.ActiveNode();
    if (role == Role::kStandby && active < 0) {
      SendError(res, 503, "local node not active but active cluster node not found");
      return true;
    }
    bool upload = IsSnapshotUpload(req);
    bool download = req.method == "GET" && req.path == kSnapshotPath;
    if (!upload && !download) return false;
    std::string token = TokenOf(req);
    if (role == Role::kStandby && !cluster_.KnowsToken(token)) {
      res.status = 307;
      res.set_header("Location", cluster_.NodeUrl(active) + req.target);
      res.set_header("Cache-Control", "no-store");
      return true;
    }
    bool force = req.path == kSnapshotForcePath;
    if (!cluster_.Allowed(token,
                          force ? "sys/storage/raft/snapshot-force" : "sys/storage/raft/snapshot",
                          download ? kRead : kUpdate)) {
      SendError(res, 403, "permission denied");
      return true;
    }
    return false;
  }

  void Drain(const Request& req, const ContentReader* reader) {
    if (reader != nullptr) ReadBody(req, reader, nullptr);
  }

  void Serve(int node, const Request& req, Response& res, const ContentReader* reader) {
    const std::string& path = req.path;
    bool write = req.method == "POST" || req.method == "PUT";
    std::string login_path = "/v1/auth/" + cluster_.config().jwt_mount + "/login";
    if (path == login_path && write) return Login(req, res, reader);
    if (path == kSnapshotPath && req.method == "GET") return Snapshot(node, req, res);
    if ((path == kSnapshotPath || path == kSnapshotForcePath) && write) {
      return Restore(node, req, res, reader, path == kSnapshotForcePath);
    }
    std::string token = TokenOf(req);
    Drain(req, reader);
    auto info = cluster_.LookupToken(token);
    if (!info) return SendError(res, 403, "permission denied");
    if (path == "/v1/auth/token/lookup-self" && req.method == "GET") {
      json policies = info->policies;
      return SendJson(res, 200,
                      json{{"data",
                            {{"accessor", info->accessor},
                             {"policies", policies},
                             {"ttl", info->ttl_seconds},
                             {"renewable", !info->root},
                             {"display_name", info->root ? "root" : "jwt"}}}});
    }
    if (path == "/v1/auth/token/revoke-self" && write) {
      cluster_.RevokeToken(token);
      res.status = 204;
      return;
    }
    std::string route = path.substr(4);
    if (path == kSnapshotPath || path == kSnapshotForcePath || path == login_path) {
      return SendError(res, 405, "unsupported operation");
    }
    SendError(res, 404, "no handler for route \"" + route + "\". route entry not found.");
  }

  void Health(int node, const Request& req, Response& res) {
    Role role = cluster_.RoleOf(node);
    int code = 200;
    if (role == Role::kSealed) {
      code = ParamCode(req, "sealedcode", 503);
    } else if (role == Role::kStandby) {
      code = ParamTrue(req, "standbyok") ? ParamCode(req, "activecode", 200)
                                         : ParamCode(req, "standbycode", 429);
    } else {
      code = ParamCode(req, "activecode", 200);
    }
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    // As OpenBao 2.7.2 answers: a standby and a sealed node know no replication mode, a
    // sealed node names no cluster, and there is no performance_standby field.
    bool active = role == Role::kActive;
    ordered_json body = {{"initialized", true},
                         {"sealed", role == Role::kSealed},
                         {"standby", !active},
                         {"replication_performance_mode", active ? "primary" : "unknown"},
                         {"replication_dr_mode", active ? "disabled" : "unknown"},
                         {"server_time_utc", now},
                         {"version", cluster_.config().version}};
    if (role != Role::kSealed) {
      body["cluster_name"] = cluster_.cluster_name();
      body["cluster_id"] = cluster_.cluster_id();
    }
    res.status = code;
    res.set_header("Cache-Control", "no-store");
    res.set_content(body.dump(), "application/json");
  }

  void Leader(int node, Response& res) {
    Role role = cluster_.RoleOf(node);
    if (role == Role::kSealed) return SendError(res, 503, "Vault is sealed");
    int active = cluster_.ActiveNode();
    auto state = cluster_.CurrentState();
    // As OpenBao 2.7.2 answers; only the active node has an active_time.
    ordered_json body = {{"ha_enabled", true}, {"is_self", role == Role::kActive}};
    if (role == Role::kActive) body["active_time"] = GoRfc3339Nano(cluster_.ActiveSince());
    body["leader_address"] = active >= 0 ? cluster_.NodeUrl(active) : "";
    body["leader_cluster_address"] = active >= 0 ? cluster_.ClusterAddress(active) : "";
    body["raft_committed_index"] = state.index;
    body["raft_applied_index"] = state.index;
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_content(body.dump(), "application/json");
  }

  void Login(const Request& req, Response& res, const ContentReader* reader) {
    std::string body;
    if (!ReadBody(req, reader, &body)) {
      return SendError(res, 400, "the request body is incomplete or too large");
    }
    auto j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return SendError(res, 400, "failed to parse JSON input: invalid request body");
    }
    std::string role =
        j.contains("role") && j["role"].is_string() ? j["role"].get<std::string>() : "";
    std::string jwt = j.contains("jwt") && j["jwt"].is_string() ? j["jwt"].get<std::string>() : "";
    auto result = cluster_.JwtLogin(role, jwt);
    if (!result.ok()) return SendError(res, 400, result.status().message());
    json policies = result->policies;
    SendJson(res, 200,
             json{{"request_id", crypto::RandomHex(8) + "-" + crypto::RandomHex(4) + "-" +
                                     crypto::RandomHex(4) + "-" + crypto::RandomHex(4) + "-" +
                                     crypto::RandomHex(12)},
                  {"lease_id", ""},
                  {"renewable", false},
                  {"lease_duration", 0},
                  {"data", nullptr},
                  {"auth",
                   {{"client_token", result->client_token},
                    {"accessor", result->accessor},
                    {"policies", policies},
                    {"token_policies", policies},
                    {"metadata", {{"role", role}}},
                    {"lease_duration", result->lease_duration},
                    {"renewable", true},
                    {"entity_id", ""},
                    {"token_type", "service"},
                    {"orphan", true}}}});
  }

  // The token was checked by Refuse(). A standby serves its own state, as OpenBao 2.7.2 does
  // (one model here: the same state as the active node's).
  void Snapshot(int node, const Request& req, Response& res) {
    Faults faults = cluster_.TakeFaults();
    if (faults.fail_status != 0) {
      return SendError(res, faults.fail_status,
                       faults.fail_status == 503 ? "Vault is sealed" : "internal error");
    }
    auto view = cluster_.CurrentState();
    auto writer =
        std::make_unique<SnapshotWriter>(view.state, cluster_.MetaForSnapshot(view),
                                         cluster_.config().seal_key, cluster_.config().gzip_level);
    auto stream = std::make_shared<SnapshotStream>(cluster_, node, req, faults, std::move(writer));
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_header("Transfer-Encoding", "chunked");
    res.set_content_provider("application/gzip", [stream](size_t /*offset*/, DataSink& sink) {
      return stream->Pump(sink);
    });
  }

  // The capability was checked by Refuse().
  void Restore(int node, const Request& req, Response& res, const ContentReader* reader,
               bool force) {
    if (cluster_.RoleOf(node) == Role::kStandby) {
      // OpenBao 2.7.2 answers a restore sent to a standby with 204, applies nothing, and the
      // standby seals itself.
      Drain(req, reader);
      (void)cluster_.SetSealed(node, true);
      log::Info("restore sent to a standby: nothing restored, the standby seals itself",
                {{"node", std::to_string(node)}});
      res.status = 204;
      return;
    }
    Faults faults = cluster_.TakeFaults();
    if (faults.fail_status != 0) {
      Drain(req, reader);
      return SendError(res, faults.fail_status,
                       faults.fail_status == 503 ? "Vault is sealed" : "internal error");
    }
    RestoreReceiver receiver(cluster_.config().temp_dir);
    bool stopped_reading = false;
    if (reader != nullptr) {
      // Reading stops at the first damage, as OpenBao's does. A client that goes away leaves
      // the archive incomplete; Finish() says so.
      (void)(*reader)([&](const char* data, size_t len) {
        if (receiver.Write(std::string_view(data, len)).ok()) return true;
        stopped_reading = true;
        return false;
      });
    } else {
      (void)receiver.Write(req.body);
    }
    const std::string& key = cluster_.config().seal_key;
    auto restored = receiver.Finish(force ? nullptr : &key);
    if (!restored.ok()) {
      log::Info("restore refused", {{"error", restored.status().message()}});
      // OpenBao: 400 for another cluster's snapshot, 500 for a damaged one.
      int status = restored.status().code() == Code::kInvalidArgument ? 400 : 500;
      SendError(res, status, restored.status().message());
      // The rest of the body was not read: the connection closes after the answer.
      if (stopped_reading) AnswerAndClose(req, res);
      return;
    }
    cluster_.InstallSnapshot(*restored);
    log::Info("snapshot restored", {{"id", restored->id},
                                    {"size", std::to_string(restored->state->size())},
                                    {"force", force ? "true" : "false"}});
    res.status = 204;
  }

  json StateJson() {
    auto view = cluster_.CurrentState();
    return json{{"digest", view.state->sha256_hex()},
                {"size", view.state->size()},
                {"index", view.index},
                {"term", view.term},
                {"source", view.state->Describe()}};
  }

  static std::optional<int> IntField(const json& j, const char* name) {
    if (!j.contains(name) || !j[name].is_number_integer()) return std::nullopt;
    return j[name].get<int>();
  }

  void HandleControl(const Request& req, const std::string& body, Response& res) {
    const std::string& path = req.path;
    const std::string& method = req.method;
    json j = json::object();
    if (method == "POST" || method == "PUT") {
      j = json::parse(body, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        return SendError(res, 400, "the body of " + path + " must be a JSON object");
      }
    }
    if (path == "/_test/state" && method == "GET") return SendJson(res, 200, StateJson());
    if (path == "/_test/state" && method == "POST") {
      if (!j.contains("size") || !j["size"].is_number_unsigned()) {
        return SendError(res, 400, "\"size\" (bytes, unsigned integer) is required");
      }
      uint64_t seed =
          j.contains("seed") && j["seed"].is_number_unsigned() ? j["seed"].get<uint64_t>() : 1;
      auto state = State::Generate(j["size"].get<uint64_t>(), seed);
      if (!state.ok()) return SendError(res, 500, state.status().message());
      cluster_.SetState(*state);
      return SendJson(res, 200, StateJson());
    }
    if (path == "/_test/tokens" && method == "POST") {
      if (!j.contains("token") || !j["token"].is_string() ||
          j["token"].get<std::string>().empty()) {
        return SendError(res, 400, "\"token\" (non-empty string) is required");
      }
      auto policy = ParsePolicy(j.value("policies", json::object()));
      if (!policy.ok()) return SendError(res, 400, policy.status().message());
      int64_t ttl = j.contains("ttl") && j["ttl"].is_number_integer() ? j["ttl"].get<int64_t>() : 0;
      cluster_.AddToken(j["token"].get<std::string>(), *policy, {"default", "test"}, ttl);
      return SendJson(res, 200, json::object());
    }
    if (path == "/_test/jwt-roles" && method == "POST") {
      JwtRole role;
      if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty()) {
        return SendError(res, 400, "\"name\" (non-empty string) is required");
      }
      role.name = j["name"].get<std::string>();
      if (j.contains("bound_audiences")) {
        const json& auds = j["bound_audiences"];
        if (auds.is_string()) {
          role.bound_audiences.push_back(auds.get<std::string>());
        } else if (auds.is_array()) {
          for (const auto& a : auds) {
            if (!a.is_string()) return SendError(res, 400, "bound_audiences must be strings");
            role.bound_audiences.push_back(a.get<std::string>());
          }
        } else {
          return SendError(res, 400, "bound_audiences must be a string or a list of strings");
        }
      }
      if (j.contains("bound_subject")) {
        if (!j["bound_subject"].is_string()) {
          return SendError(res, 400, "bound_subject must be a string");
        }
        role.bound_subject = j["bound_subject"].get<std::string>();
      }
      auto policy = ParsePolicy(j.value("policies", json::object()));
      if (!policy.ok()) return SendError(res, 400, policy.status().message());
      role.policy = *policy;
      if (j.contains("ttl") && j["ttl"].is_number_integer()) {
        role.ttl_seconds = j["ttl"].get<int64_t>();
      }
      cluster_.AddJwtRole(std::move(role));
      return SendJson(res, 200, json::object());
    }
    if (path == "/_test/leader" && method == "GET") {
      return SendJson(res, 200,
                      json{{"leader", cluster_.Leader()}, {"active", cluster_.ActiveNode()}});
    }
    if (path == "/_test/leader" && method == "POST") {
      auto node = IntField(j, "node");
      if (!node) return SendError(res, 400, "\"node\" (integer) is required");
      Status st = cluster_.SetLeader(*node);
      if (!st.ok()) return SendError(res, 400, st.message());
      return SendJson(res, 200, json{{"leader", *node}});
    }
    if (path == "/_test/seal" && method == "POST") {
      auto node = IntField(j, "node");
      if (!node || !j.contains("sealed") || !j["sealed"].is_boolean()) {
        return SendError(res, 400, "\"node\" (integer) and \"sealed\" (boolean) are required");
      }
      Status st = cluster_.SetSealed(*node, j["sealed"].get<bool>());
      if (!st.ok()) return SendError(res, 400, st.message());
      return SendJson(res, 200, json::object());
    }
    if (path == "/_test/faults" && method == "POST") {
      Faults faults;
      for (const auto& [name, target] :
           {std::pair{"cut_after_bytes", &faults.cut_after_bytes},
            std::pair{"corrupt_at_byte", &faults.corrupt_at_byte},
            std::pair{"stall_after_bytes", &faults.stall_after_bytes},
            std::pair{"leader_change_after_bytes", &faults.leader_change_after_bytes}}) {
        if (!j.contains(name)) continue;
        if (!j[name].is_number_unsigned()) {
          return SendError(res, 400, std::string("\"") + name + "\" must be an unsigned integer");
        }
        *target = j[name].get<uint64_t>();
      }
      if (j.contains("fail_status")) {
        auto status = IntField(j, "fail_status");
        if (!status || *status < 400 || *status > 599) {
          return SendError(res, 400, "\"fail_status\" must be an HTTP error status (400..599)");
        }
        faults.fail_status = *status;
      }
      std::optional<int64_t> count;
      if (j.contains("count")) {
        if (!j["count"].is_number_unsigned() || j["count"].get<int64_t>() < 1) {
          return SendError(res, 400, "\"count\" must be a positive integer");
        }
        count = j["count"].get<int64_t>();
      }
      for (const auto& [name, value] : j.items()) {
        static const std::set<std::string> kKnown = {
            "cut_after_bytes",           "corrupt_at_byte", "stall_after_bytes",
            "leader_change_after_bytes", "fail_status",     "count"};
        if (kKnown.count(name) == 0) return SendError(res, 400, "unknown fault \"" + name + "\"");
      }
      cluster_.SetFaults(faults, count);
      return SendJson(res, 200, json::object());
    }
    if (path == "/_test/faults" && method == "DELETE") {
      cluster_.ClearFaults();
      return SendJson(res, 200, json::object());
    }
    if (path == "/_test/requests" && method == "GET") {
      return SendJson(res, 200, cluster_.Requests());
    }
    if (path == "/_test/requests" && method == "DELETE") {
      cluster_.ClearRequests();
      return SendJson(res, 200, json::object());
    }
    SendError(res, 404, "unknown control endpoint " + method + " " + path);
  }

  Cluster& cluster_;
};

}  // namespace

ClusterServer::ClusterServer(Cluster& cluster, TlsFiles tls, ListenAddress listen)
    : cluster_(cluster), tls_(std::move(tls)), listen_(std::move(listen)) {}

ClusterServer::~ClusterServer() {
  Stop();
  Join();
  for (int fd : cluster_fds_) close(fd);
}

namespace {

// Binds (without listening: connections are refused) a socket on 127.0.0.1 at a
// kernel-chosen port, so that the port named as a node's cluster address is reserved for
// it. Returns the port, or -1.
int ReserveClusterPort(std::vector<int>& fds) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  fds.push_back(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

Status ClusterServer::Start() {
  auto handler = std::make_shared<Handler>(cluster_);
  std::vector<int> cluster_ports;
  bool tls = !tls_.cert_file.empty();
  for (int i = 0; i < cluster_.node_count(); ++i) {
    std::unique_ptr<httplib::Server> server;
    if (tls) {
      server = std::make_unique<httplib::SSLServer>(tls_.cert_file.c_str(), tls_.key_file.c_str());
    } else {
      server = std::make_unique<httplib::Server>();
    }
    if (!server->is_valid()) {
      return InvalidArgument("cannot load the TLS certificate " + tls_.cert_file + " and key " +
                             tls_.key_file);
    }
    server->new_task_queue = [] { return new httplib::ThreadPool(48); };
    server->set_read_timeout(120);
    server->set_write_timeout(120);
    server->set_keep_alive_timeout(2);
    server->set_keep_alive_max_count(1000);
    server->set_tcp_nodelay(true);
    // A response that closes the connection announces no keep-alive.
    server->set_post_routing_handler([](const Request&, Response& res) {
      if (res.get_header_value("Connection") == "close") res.headers.erase("Keep-Alive");
    });
    server->set_expect_100_continue_handler([handler, i](const Request& req, Response& res) {
      return handler->EarlyAnswer(i, req, res);
    });
    server->Get(".*", [handler, i](const Request& req, Response& res) {
      handler->Handle(i, req, res, nullptr);
    });
    server->Delete(".*", [handler, i](const Request& req, Response& res) {
      handler->Handle(i, req, res, nullptr);
    });
    server->Post(".*",
                 [handler, i](const Request& req, Response& res, const ContentReader& reader) {
                   handler->Handle(i, req, res, &reader);
                 });
    server->Put(".*", [handler, i](const Request& req, Response& res, const ContentReader& reader) {
      handler->Handle(i, req, res, &reader);
    });
    int port = 0;
    if (i == 0 && listen_.first_port != 0) {
      if (server->bind_to_port(listen_.host, listen_.first_port)) port = listen_.first_port;
    } else {
      port = server->bind_to_any_port(listen_.host);
    }
    if (port <= 0) return Unavailable("cannot bind a listener on " + listen_.host);
    int cluster_port = ReserveClusterPort(cluster_fds_);
    if (cluster_port <= 0) return Unavailable("cannot reserve a cluster port on 127.0.0.1");
    cluster_ports.push_back(cluster_port);
    urls_.push_back(std::string(tls ? "https" : "http") + "://" + listen_.host + ":" +
                    std::to_string(port));
    servers_.push_back(std::move(server));
  }
  cluster_.SetNodeUrls(urls_, cluster_ports);
  for (auto& server : servers_) {
    threads_.emplace_back([s = server.get()] { s->listen_after_bind(); });
  }
  return Status::Ok();
}

void ClusterServer::Stop() {
  cluster_.Shutdown();
  for (auto& server : servers_) server->stop();
}

void ClusterServer::Join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace bao::testserver
