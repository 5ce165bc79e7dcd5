#include "support/openbao.h"

#include <signal.h>

#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "support/test_pki.h"

namespace bao::testing {
namespace {

using nlohmann::json;

std::string Scheme(bool tls) {
  return tls ? "https" : "http";
}

}  // namespace

RealBaoCluster::RealBaoCluster(RealBaoOptions options) : options_(options) {}

RealBaoCluster::~RealBaoCluster() {
  Stop();
}

std::string RealBaoCluster::BaoBinary() {
  std::string path = PeerBinary("bao");
  return std::filesystem::exists(path) ? path : "";
}

const std::string& RealBaoCluster::Url(int node) const {
  return nodes_.at(static_cast<size_t>(node)).url;
}

std::vector<std::string> RealBaoCluster::Urls() const {
  std::vector<std::string> out;
  for (const Node& n : nodes_) out.push_back(n.url);
  return out;
}

http::TlsOptions RealBaoCluster::Tls() const {
  http::TlsOptions tls;
  tls.ca_file = ca_file_;
  return tls;
}

std::string RealBaoCluster::Logs(int node) const {
  const Node& n = nodes_.at(static_cast<size_t>(node));
  return n.process ? n.process->Stdout() + n.process->Stderr() : "";
}

Status RealBaoCluster::StartNode(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  std::string data = dir_.File("node" + std::to_string(i));
  std::filesystem::create_directories(data);
  std::string listener_tls = options_.tls ? "  tls_cert_file = \"" + cert_file_ +
                                                "\"\n  tls_key_file = \"" + key_file_ + "\"\n"
                                          : "  tls_disable = true\n";
  // Short autopilot intervals and performance_multiplier 1 make voter promotion and leader
  // election take about a second instead of ten: test tuning, not production advice.
  std::string config = "storage \"raft\" {\n  path = \"" + data + "\"\n  node_id = \"node" +
                       std::to_string(i) +
                       "\"\n  performance_multiplier = 1\n"
                       "  autopilot_reconcile_interval = \"1s\"\n"
                       "  autopilot_update_interval = \"500ms\"\n}\n"
                       "listener \"tcp\" {\n  address = \"127.0.0.1:" +
                       std::to_string(n.api_port) +
                       "\"\n  cluster_address = \"127.0.0.1:" + std::to_string(n.cluster_port) +
                       "\"\n" + listener_tls + "}\napi_addr = \"" + n.url +
                       "\"\ncluster_addr = \"https://127.0.0.1:" + std::to_string(n.cluster_port) +
                       "\"\ndisable_mlock = true\nui = false\nlog_level = \"info\"\n";
  if (options_.audit) {
    // OpenBao 2.x creates audit devices from the configuration only (not through the API).
    config += "audit \"file\" \"test\" {\n  options {\n    file_path = \"" + AuditLogFile(i) +
              "\"\n  }\n}\n";
  }
  n.config_file = dir_.File("node" + std::to_string(i) + ".hcl");
  WriteText(n.config_file, config);
  n.process = std::make_unique<Process>();
  std::string error;
  if (!n.process->Start({BaoBinary(), "server", "-config", n.config_file}, {}, &error)) {
    return Internal("node " + std::to_string(i) + ": " + error);
  }
  return Status::Ok();
}

Status RealBaoCluster::WaitFor(const std::string& what, std::chrono::milliseconds deadline,
                               const std::function<bool(std::string* state)>& done) {
  std::string state;
  bool ok = WaitUntil([&] { return done(&state); }, deadline);
  if (ok) return Status::Ok();
  std::string logs;
  for (int i = 0; i < size(); ++i) {
    std::string l = Logs(i);
    if (l.size() > 3000) l = "..." + l.substr(l.size() - 3000);
    logs += "\n--- node" + std::to_string(i) + " log:\n" + l;
  }
  return DeadlineExceeded("real OpenBao: " + what + " did not happen within " +
                          std::to_string(deadline.count() / 1000) + "s (last: " + state + ")" +
                          logs);
}

Status RealBaoCluster::Start() {
  if (BaoBinary().empty()) {
    return FailedPrecondition("the OpenBao server binary is not installed at " + PeerBinary("bao") +
                              ": run scripts/setup.sh --peers");
  }
  if (options_.tls) {
    Result<TestPkiFiles> pki = MakeTestPki(dir_.path());
    if (!pki.ok()) return pki.status();
    ca_file_ = pki->ca_file;
    cert_file_ = pki->cert_file;
    key_file_ = pki->key_file;
  }
  nodes_.resize(static_cast<size_t>(options_.nodes));
  for (int i = 0; i < options_.nodes; ++i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    n.api_port = FreePort();
    n.cluster_port = FreePort();
    n.url = Scheme(options_.tls) + "://127.0.0.1:" + std::to_string(n.api_port);
    BAO_RETURN_IF_ERROR(StartNode(i));
  }
  for (int i = 0; i < size(); ++i) {
    BAO_RETURN_IF_ERROR(WaitFor("node" + std::to_string(i) + " listening", std::chrono::seconds(30),
                                [&](std::string* state) {
                                  Result<BaoReply> r = Call(i, "GET", "sys/health", nullptr, "");
                                  *state = r.ok() ? r->Describe() : r.status().message();
                                  return r.ok();
                                }));
  }
  Result<BaoReply> init =
      Call(0, "PUT", "sys/init", {{"secret_shares", 1}, {"secret_threshold", 1}}, "");
  if (!init.ok()) return init.status();
  if (init->status != 200 || !init->body.contains("root_token")) {
    return Internal("sys/init answered " + init->Describe());
  }
  root_token_ = init->body["root_token"].get<std::string>();
  unseal_key_ = init->body["keys"][0].get<std::string>();
  BAO_RETURN_IF_ERROR(Unseal(0));
  BAO_RETURN_IF_ERROR(WaitForActive());
  Result<BaoReply> autopilot = Call(0, "POST", "sys/storage/raft/autopilot/configuration",
                                    {{"server_stabilization_time", "1s"}});
  if (!autopilot.ok()) return autopilot.status();

  json join = {{"leader_api_addr", nodes_[0].url}};
  if (options_.tls) join["leader_ca_cert"] = ReadText(ca_file_);
  for (int i = 1; i < size(); ++i) {
    Result<BaoReply> r = Call(i, "POST", "sys/storage/raft/join", join, "");
    if (!r.ok()) return r.status();
    if (r->status != 200 || !r->body.value("joined", false)) {
      return Internal("node" + std::to_string(i) + " could not join: " + r->Describe());
    }
    BAO_RETURN_IF_ERROR(Unseal(i));
  }
  BAO_RETURN_IF_ERROR(WaitFor("all nodes voters", std::chrono::seconds(60), [&](std::string* s) {
    Result<BaoReply> r = Call(0, "GET", "sys/storage/raft/configuration");
    if (!r.ok() || r->status != 200) {
      *s = r.ok() ? r->Describe() : r.status().message();
      return false;
    }
    const json& servers = r->body["data"]["config"]["servers"];
    *s = servers.dump();
    if (!servers.is_array() || static_cast<int>(servers.size()) != size()) return false;
    for (const json& server : servers) {
      if (!server.value("voter", false)) return false;
    }
    return true;
  }));
  if (options_.kv) {
    Result<BaoReply> r =
        Call(0, "POST", "sys/mounts/secret", {{"type", "kv"}, {"options", {{"version", "2"}}}});
    if (!r.ok()) return r.status();
    if (r->status != 204) return Internal("mounting KV v2 at secret/ answered " + r->Describe());
    // KV v2 answers 500/"upgrading" briefly after the mount; wait until it takes writes.
    BAO_RETURN_IF_ERROR(WaitFor("KV v2 ready", std::chrono::seconds(30), [&](std::string* s) {
      Result<BaoReply> w = Call(0, "POST", "secret/data/_ready", {{"data", {{"ok", true}}}});
      *s = w.ok() ? w->Describe() : w.status().message();
      return w.ok() && w->status == 200;
    }));
  }
  return Status::Ok();
}

void RealBaoCluster::Stop() {
  for (Node& n : nodes_) {
    if (n.process && n.process->Running()) n.process->Stop(std::chrono::milliseconds(5000));
  }
}

Result<BaoReply> RealBaoCluster::CallUrl(const std::string& url, const std::string& method,
                                         const json& body, const std::string& token,
                                         std::chrono::milliseconds timeout) {
  http::Request req;
  req.method = method;
  req.url = url;
  req.tls = Tls();
  req.timeout = timeout;
  req.connect_timeout = std::chrono::milliseconds(2000);
  std::string t = token == "root" ? root_token_ : token;
  if (!t.empty()) req.headers.push_back({"X-Vault-Token", t});
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.push_back({"Content-Type", "application/json"});
  }
  Result<http::Response> r = http_.Do(req);
  if (!r.ok()) return r.status();
  BaoReply reply;
  reply.status = r->status;
  reply.body = json::parse(r->body, nullptr, false);
  if (reply.body.is_discarded()) reply.body = r->body.empty() ? json() : json(r->body);
  return reply;
}

Result<BaoReply> RealBaoCluster::Call(int node, const std::string& method, const std::string& path,
                                      const json& body, const std::string& token) {
  return CallUrl(Url(node) + "/v1/" + path, method, body, token, std::chrono::seconds(30));
}

int RealBaoCluster::ActiveNode() {
  for (int i = 0; i < size(); ++i) {
    if (!Running(i)) continue;
    Result<BaoReply> r =
        CallUrl(Url(i) + "/v1/sys/health", "GET", nullptr, "", std::chrono::seconds(3));
    if (r.ok() && r->status == 200) return i;
  }
  return -1;
}

Status RealBaoCluster::WaitForActive(std::chrono::milliseconds deadline) {
  return WaitFor("an active node", deadline, [&](std::string* s) {
    int active = ActiveNode();
    *s = "active node " + std::to_string(active);
    if (active < 0) return false;
    // sys/leader takes the node's state lock: it answers once the node is really serving.
    Result<BaoReply> r =
        CallUrl(Url(active) + "/v1/sys/leader", "GET", nullptr, "", std::chrono::seconds(3));
    *s += r.ok() ? ", sys/leader " + r->Describe() : ", " + r.status().message();
    return r.ok() && r->status == 200 && r->body.value("is_self", false);
  });
}

Status RealBaoCluster::Unseal(int node, const std::string& key) {
  Result<BaoReply> r =
      Call(node, "PUT", "sys/unseal", {{"key", key.empty() ? unseal_key_ : key}}, "");
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return Internal("unsealing node" + std::to_string(node) + " answered " + r->Describe());
  }
  // A follower that just joined answers "sealed" and unseals once it has the leader's data.
  return WaitFor("node" + std::to_string(node) + " unsealed", std::chrono::seconds(60),
                 [&](std::string* s) {
                   Result<BaoReply> h = Call(node, "GET", "sys/health", nullptr, "");
                   *s = h.ok() ? h->Describe() : h.status().message();
                   return h.ok() && h->body.is_object() && !h->body.value("sealed", true);
                 });
}

Status RealBaoCluster::UnsealAll(const std::string& key) {
  for (int i = 0; i < size(); ++i) {
    if (Running(i)) BAO_RETURN_IF_ERROR(Unseal(i, key));
  }
  return WaitForActive();
}

void RealBaoCluster::Kill(int node) {
  Node& n = nodes_.at(static_cast<size_t>(node));
  if (n.process && n.process->Running()) {
    n.process->Signal(SIGKILL);
    n.process->Wait(std::chrono::seconds(10));
  }
}

bool RealBaoCluster::Running(int node) {
  Node& n = nodes_.at(static_cast<size_t>(node));
  return n.process && n.process->Running();
}

Status RealBaoCluster::PutSecret(const std::string& path, const json& data,
                                 const std::string& token) {
  int active = ActiveNode();
  if (active < 0) return Unavailable("no active node to write secret/" + path + " to");
  Result<BaoReply> r = Call(active, "POST", "secret/data/" + path, {{"data", data}}, token);
  if (!r.ok()) return r.status();
  if (r->status != 200) return Internal("writing secret/" + path + " answered " + r->Describe());
  return Status::Ok();
}

Status RealBaoCluster::EveryNodeServes(const std::string& path, const json& want,
                                       const std::string& token,
                                       std::chrono::milliseconds deadline) {
  int active = ActiveNode();
  if (active < 0) return Unavailable("no active node");
  auto index_of = [&](int node) -> uint64_t {
    Result<BaoReply> r = Call(node, "GET", "sys/leader", nullptr, "");
    return r.ok() && r->status == 200 ? r->body.value("raft_applied_index", uint64_t{0}) : 0;
  };
  for (int i = 0; i < size(); ++i) {
    if (!Running(i)) continue;
    if (!WaitUntil([&] { return index_of(i) >= index_of(active); }, deadline)) {
      return DeadlineExceeded("node " + std::to_string(i) + " did not catch up with node " +
                              std::to_string(active));
    }
    Result<json> got = NotFound("not read yet");
    WaitUntil(
        [&] {
          got = GetSecret(i, path, token);
          return got.ok() && *got == want;
        },
        deadline);
    if (!got.ok()) return got.status().WithContext("node " + std::to_string(i));
    if (*got != want) {
      return FailedPrecondition("node " + std::to_string(i) + " serves " + got->dump() + " at " +
                                path + ", not " + want.dump());
    }
  }
  return Status::Ok();
}

Result<json> RealBaoCluster::GetSecret(int node, const std::string& path,
                                       const std::string& token) {
  Result<BaoReply> r = Call(node, "GET", "secret/data/" + path, nullptr, token);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return NotFound("reading secret/" + path + " on node" + std::to_string(node) + " answered " +
                    r->Describe());
  }
  return r->body["data"]["data"];
}

Status RealBaoCluster::Fill(uint64_t bytes) {
  constexpr size_t kValue = 900 * 1024;  // under Raft's 1 MiB entry limit with the JSON around it
  std::mt19937_64 rng(static_cast<uint64_t>(filled_) + 1);
  const char* alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string value(kValue, 'x');
  for (uint64_t written = 0; written < bytes; written += kValue) {
    for (char& c : value) c = alphabet[rng() % 62];
    BAO_RETURN_IF_ERROR(PutSecret("fill-" + std::to_string(filled_++), {{"v", value}}));
  }
  return Status::Ok();
}

Status RealBaoCluster::PutPolicy(const std::string& name, const std::string& hcl) {
  Result<BaoReply> r = Call(0, "PUT", "sys/policies/acl/" + name, {{"policy", hcl}});
  if (!r.ok()) return r.status();
  if (r->status != 204 && r->status != 200) {
    return Internal("writing policy " + name + " answered " + r->Describe());
  }
  return Status::Ok();
}

Result<std::string> RealBaoCluster::CreateToken(const std::vector<std::string>& policies) {
  Result<BaoReply> r = Call(0, "POST", "auth/token/create",
                            {{"policies", policies}, {"no_default_policy", true}, {"ttl", "1h"}});
  if (!r.ok()) return r.status();
  if (r->status != 200) return Internal("creating a token answered " + r->Describe());
  return r->body["auth"]["client_token"].get<std::string>();
}

Status RealBaoCluster::EnableJwt(const std::string& mount, const std::string& public_pem) {
  Result<BaoReply> r = Call(0, "POST", "sys/auth/" + mount, {{"type", "jwt"}});
  if (!r.ok()) return r.status();
  if (r->status != 204) return Internal("enabling JWT auth answered " + r->Describe());
  r = Call(0, "POST", "auth/" + mount + "/config", {{"jwt_validation_pubkeys", {public_pem}}});
  if (!r.ok()) return r.status();
  if (r->status != 204 && r->status != 200) {
    return Internal("configuring JWT auth answered " + r->Describe());
  }
  return Status::Ok();
}

Status RealBaoCluster::AddJwtRole(const std::string& mount, const std::string& name, json role) {
  if (!role.contains("role_type")) role["role_type"] = "jwt";
  if (!role.contains("user_claim")) role["user_claim"] = "sub";
  Result<BaoReply> r = Call(0, "POST", "auth/" + mount + "/role/" + name, role);
  if (!r.ok()) return r.status();
  if (r->status != 204 && r->status != 200) {
    return Internal("adding JWT role " + name + " answered " + r->Describe());
  }
  return Status::Ok();
}

std::string RealBaoCluster::AuditLogFile(int node) const {
  return dir_.File("audit-node" + std::to_string(node) + ".log");
}

std::vector<nlohmann::json> RealBaoCluster::AuditRequests() const {
  std::vector<json> out;
  for (int i = 0; i < size(); ++i) {
    std::istringstream in(ReadText(AuditLogFile(i)));
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.value("type", "") == "request" && j.contains("request")) {
        out.push_back(j["request"]);
      }
    }
  }
  return out;
}

}  // namespace bao::testing
