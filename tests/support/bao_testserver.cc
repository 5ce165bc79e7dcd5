#include "support/bao_testserver.h"

#include <chrono>

#include "common/redact.h"
#include "support/test_pki.h"

namespace bao::testing {

BaoTestServer::BaoTestServer(BaoTestServerOptions options) : options_(std::move(options)) {}

BaoTestServer::~BaoTestServer() {
  Stop();
}

Status BaoTestServer::Start() {
  dir_ = std::make_unique<TempDir>();
  if (dir_->path().empty()) return Internal("cannot create a temporary directory");
  std::string ready = dir_->File("ready.json");
  std::vector<std::string> argv = {BuildBinary("bao-testserver"),
                                   "--nodes",
                                   std::to_string(options_.nodes),
                                   "--ready-file",
                                   ready,
                                   "--state-size",
                                   std::to_string(options_.state_size),
                                   "--seed",
                                   std::to_string(options_.seed),
                                   "--gzip-level",
                                   std::to_string(options_.gzip_level)};
  auto add = [&](const char* flag, const std::string& value) {
    if (!value.empty()) {
      argv.push_back(flag);
      argv.push_back(value);
    }
  };
  add("--admin-token", options_.admin_token);
  add("--jwt-public-key", options_.jwt_public_key_file);
  add("--jwt-mount", options_.jwt_mount);
  add("--seal-key", options_.seal_key);
  add("--cluster-name", options_.cluster_name);
  if (options_.tls) {
    auto pki = MakeTestPki(dir_->path());
    if (!pki.ok()) return pki.status().WithContext("making the test PKI");
    ca_file_ = pki->ca_file;
    add("--tls-cert", pki->cert_file);
    add("--tls-key", pki->key_file);
  }
  std::string error;
  if (!process_.Start(argv, {}, &error)) return Unavailable(error);
  nlohmann::json doc;
  bool up = WaitUntil(
      [&] {
        if (!process_.Running()) return true;
        doc = nlohmann::json::parse(ReadText(ready), nullptr, false);
        return !doc.is_discarded() && doc.is_object() && doc.contains("nodes");
      },
      std::chrono::seconds(60));
  if (!process_.Running()) {
    int status = process_.Wait(std::chrono::milliseconds(0));
    return Unavailable("bao-testserver exited during start-up with status " +
                       std::to_string(status) + ": " + process_.Stderr());
  }
  if (!up) return DeadlineExceeded("bao-testserver did not write its ready file within 60 s");
  urls_.clear();
  if (!doc["nodes"].is_array()) return Internal("malformed ready file");
  for (const auto& url : doc["nodes"]) {
    if (!url.is_string()) return Internal("malformed ready file");
    urls_.push_back(url.get<std::string>());
  }
  return Status::Ok();
}

int BaoTestServer::Stop() {
  // The server gives open connections 5 s and then exits by itself; past that, its exit (the
  // temporary state's removal, a sanitizer build's leak check) can take seconds more on a loaded
  // machine. Stop() returns as soon as it has exited, so the margin costs nothing otherwise.
  return process_.Stop(std::chrono::seconds(30));
}

http::TlsOptions BaoTestServer::Tls() const {
  http::TlsOptions tls;
  tls.ca_file = ca_file_;
  return tls;
}

std::string BaoTestServer::Logs() const {
  return process_.Stderr();
}

Result<nlohmann::json> BaoTestServer::Control(const std::string& method, const std::string& path,
                                              const nlohmann::json& body) {
  if (urls_.empty()) return FailedPrecondition("bao-testserver is not started");
  http::Client client;
  http::Request req;
  req.method = method;
  req.url = urls_[0] + path;
  req.tls = Tls();
  req.timeout = std::chrono::seconds(120);
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.emplace_back("Content-Type", "application/json");
  }
  auto res = client.Do(req);
  if (!res.ok()) return res.status().WithContext(method + " " + path);
  if (!res->ok()) {
    return Internal(method + " " + path + ": HTTP " + std::to_string(res->status) + ": " +
                    http::ErrorSummary(*res));
  }
  auto doc = nlohmann::json::parse(res->body, nullptr, false);
  if (doc.is_discarded()) return Internal(method + " " + path + ": answer is not JSON");
  return doc;
}

Result<int> BaoTestServer::LeaderIndex() {
  BAO_ASSIGN_OR_RETURN(auto doc, Control("GET", "/_test/leader", nullptr));
  if (!doc.contains("leader") || !doc["leader"].is_number_integer()) {
    return Internal("GET /_test/leader: no leader field");
  }
  return doc["leader"].get<int>();
}

Status BaoTestServer::SetLeader(int node) {
  return Control("POST", "/_test/leader", {{"node", node}}).status();
}

Status BaoTestServer::Seal(int node, bool sealed) {
  return Control("POST", "/_test/seal", {{"node", node}, {"sealed", sealed}}).status();
}

Status BaoTestServer::AddToken(const std::string& token, const nlohmann::json& policies) {
  RegisterSecret(token);
  return Control("POST", "/_test/tokens", {{"token", token}, {"policies", policies}}).status();
}

Status BaoTestServer::AddJwtRole(const nlohmann::json& role) {
  return Control("POST", "/_test/jwt-roles", role).status();
}

Status BaoTestServer::SetFaults(const nlohmann::json& faults) {
  return Control("POST", "/_test/faults", faults).status();
}

Status BaoTestServer::ClearFaults() {
  return Control("DELETE", "/_test/faults", nullptr).status();
}

Result<nlohmann::json> BaoTestServer::State() {
  return Control("GET", "/_test/state", nullptr);
}

Result<nlohmann::json> BaoTestServer::SetState(uint64_t size, uint64_t seed) {
  return Control("POST", "/_test/state", {{"size", size}, {"seed", seed}});
}

Result<nlohmann::json> BaoTestServer::Requests() {
  return Control("GET", "/_test/requests", nullptr);
}

Status BaoTestServer::ClearRequests() {
  return Control("DELETE", "/_test/requests", nullptr).status();
}

}  // namespace bao::testing
