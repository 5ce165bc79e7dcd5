#include "support/kube_apiserver.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/redact.h"
#include "common/yaml_json.h"
#include "crypto/crypto.h"
#include "support/test_pki.h"

namespace bao::testing {
namespace {

using nlohmann::json;

constexpr char kFieldManager[] = "bao-backup-tests";
constexpr char kIssuer[] = "https://kubernetes.default.svc";

// The kinds Apply() knows: API group, kind, resource (plural), namespaced.
struct KindInfo {
  const char* group;
  const char* kind;
  const char* plural;
  bool namespaced;
};

constexpr KindInfo kKinds[] = {
    {"", "Namespace", "namespaces", false},
    {"", "ServiceAccount", "serviceaccounts", true},
    {"", "Secret", "secrets", true},
    {"", "ConfigMap", "configmaps", true},
    {"", "Service", "services", true},
    {"", "Pod", "pods", true},
    {"rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false},
    {"rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false},
    {"rbac.authorization.k8s.io", "Role", "roles", true},
    {"rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true},
    {"apps", "Deployment", "deployments", true},
    {"batch", "Job", "jobs", true},
    {"policy", "PodDisruptionBudget", "poddisruptionbudgets", true},
    {"apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false},
    {"openbao.org", "OpenBaoCluster", "openbaoclusters", true},
    {"openbao.org", "OpenBaoRestore", "openbaorestores", true},
};

// API groups whose kinds Apply() skips: the Prometheus operator's CRDs are not installed.
constexpr const char* kSkippedGroups[] = {"monitoring.coreos.com"};

std::string Str(const json& obj, const char* field) {
  if (!obj.is_object()) return "";
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Tail(const std::string& text, size_t n) {
  return text.size() > n ? "..." + text.substr(text.size() - n) : text;
}

// Splits a YAML stream at its document markers ("---" lines; "..." lines end a document).
std::vector<std::string> SplitDocuments(const std::string& yaml) {
  std::vector<std::string> docs(1);
  std::istringstream in(yaml);
  for (std::string line; std::getline(in, line);) {
    std::string_view l(line);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    bool marker = l.starts_with("---") && (l.size() == 3 || l[3] == ' ' || l[3] == '\t');
    if (marker || l == "...") {
      docs.emplace_back();
      // "--- {a: 1}": the document starts on the marker line.
      if (marker && l.size() > 3) docs.back() = std::string(l.substr(4)) + "\n";
      continue;
    }
    docs.back() += line + "\n";
  }
  return docs;
}

long VmHwmKiB(Process* p) {
  if (p == nullptr || !p->Running()) return 0;
  std::ifstream in("/proc/" + std::to_string(p->pid()) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmHWM:")) return std::atol(line.c_str() + 6);
  }
  return 0;
}

}  // namespace

std::string KubeReply::Describe() const {
  std::string text = "HTTP " + std::to_string(status);
  if (body.is_object() && Str(body, "kind") == "Status") {
    std::string reason = Str(body, "reason");
    if (!reason.empty()) text += " " + reason;
    return text + ": " + Str(body, "message");
  }
  if (body.is_null()) return text;
  std::string b = body.is_string() ? body.get<std::string>() : body.dump();
  return text + " " + (b.size() > 500 ? b.substr(0, 500) + "..." : b);
}

RealKubeApiServer::RealKubeApiServer() = default;

RealKubeApiServer::~RealKubeApiServer() {
  Stop();
}

std::string RealKubeApiServer::EtcdBinary() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(std::string(path != nullptr ? path : "") + ":/usr/bin:/usr/local/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/etcd";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string RealKubeApiServer::Binary() {
  std::string path = PeerBinary("kube-apiserver");
  if (access(path.c_str(), X_OK) != 0 || EtcdBinary().empty()) return "";
  return path;
}

http::TlsOptions RealKubeApiServer::Tls() const {
  http::TlsOptions tls;
  tls.ca_file = ca_file_;
  return tls;
}

k8s::Config RealKubeApiServer::AdminConfig() const {
  return ConfigFor(admin_token_);
}

k8s::Config RealKubeApiServer::ConfigFor(const std::string& token,
                                         const std::string& default_namespace) const {
  k8s::Config config;
  config.server = url_;
  config.tls = Tls();
  config.token = token;
  config.default_namespace = default_namespace;
  return config;
}

std::string RealKubeApiServer::Logs() const {
  std::string out;
  if (etcd_) out += "\n--- etcd log:\n" + Tail(etcd_->Stdout() + etcd_->Stderr(), 3000);
  if (apiserver_) {
    out += "\n--- kube-apiserver log:\n" + Tail(apiserver_->Stdout() + apiserver_->Stderr(), 6000);
  }
  return out;
}

long RealKubeApiServer::PeakRssKiB() const {
  return VmHwmKiB(etcd_.get()) + VmHwmKiB(apiserver_.get());
}

Status RealKubeApiServer::WaitFor(const std::string& what, std::chrono::milliseconds deadline,
                                  const std::function<bool(std::string* state)>& done) {
  std::string state, died;
  bool ok = WaitUntil(
      [&] {
        for (auto* p : {&etcd_, &apiserver_}) {
          if (*p && !(*p)->Running()) {
            died = (p == &etcd_ ? "etcd" : "kube-apiserver");
            died += " exited with status " + std::to_string((*p)->Wait({}));
            return true;
          }
        }
        return done(&state);
      },
      deadline);
  if (ok && died.empty()) return Status::Ok();
  std::string why = !died.empty() ? died
                                  : "not done within " + std::to_string(deadline.count() / 1000) +
                                        "s (last: " + state + ")";
  return Status(died.empty() ? Code::kDeadlineExceeded : Code::kInternal,
                "real kube-apiserver: waiting for " + what + ": " + why + Logs());
}

Status RealKubeApiServer::StartEtcd() {
  etcd_client_port_ = FreePort();
  etcd_peer_port_ = FreePort();
  std::string client = "http://127.0.0.1:" + std::to_string(etcd_client_port_);
  std::string peer = "http://127.0.0.1:" + std::to_string(etcd_peer_port_);
  etcd_ = std::make_unique<Process>();
  std::string error;
  // One member; logs (warnings only) to stderr rather than journald.
  std::vector<std::string> argv = {
      EtcdBinary(),
      "--name=test",
      "--data-dir=" + dir_.File("etcd"),
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=test=" + peer,
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
  };
  if (!etcd_->Start(argv, {}, &error)) {
    return Internal("etcd: " + error);
  }
  http::Client http;
  return WaitFor("etcd healthy", std::chrono::seconds(30), [&](std::string* state) {
    http::Request req;
    req.url = client + "/health";
    req.connect_timeout = std::chrono::milliseconds(500);
    req.timeout = std::chrono::seconds(2);
    Result<http::Response> r = http.Do(req);
    *state = r.ok() ? std::to_string(r->status) + " " + r->body : r.status().message();
    return r.ok() && r->status == 200;
  });
}

Status RealKubeApiServer::StartApiServer() {
  Result<TestPkiFiles> pki = MakeTestPki(dir_.path());
  if (!pki.ok()) return pki.status();
  ca_file_ = pki->ca_file;
  Result<RsaKeyPair> sa = MakeRsaKeyPair();
  if (!sa.ok()) return sa.status();
  std::string sa_key = dir_.File("sa.key"), sa_pub = dir_.File("sa.pub");
  WriteText(sa_key, sa->private_pem);
  WriteText(sa_pub, sa->public_pem);
  admin_token_ = "admin-" + crypto::RandomHex(32);
  RegisterSecret(admin_token_);
  std::string tokens = dir_.File("tokens.csv");
  WriteText(tokens, admin_token_ + ",admin,admin,system:masters\n");
  std::filesystem::create_directories(dir_.File("certs"));

  port_ = FreePort();
  url_ = "https://127.0.0.1:" + std::to_string(port_);
  apiserver_ = std::make_unique<Process>();
  std::string error;
  std::vector<std::string> argv = {
      Binary(),
      "--etcd-servers=http://127.0.0.1:" + std::to_string(etcd_client_port_),
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      "--secure-port=" + std::to_string(port_),
      "--cert-dir=" + dir_.File("certs"),
      "--tls-cert-file=" + pki->cert_file,
      "--tls-private-key-file=" + pki->key_file,
      "--token-auth-file=" + tokens,
      "--service-account-issuer=" + std::string(kIssuer),
      "--api-audiences=" + std::string(kIssuer),
      "--service-account-key-file=" + sa_pub,
      "--service-account-signing-key-file=" + sa_key,
      "--authorization-mode=Node,RBAC",
      // Added to the default plugins (--enable-admission-plugins does not replace them).
      "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
      "--service-cluster-ip-range=10.96.0.0/24",
      // Test tuning: no API priority and fairness (its config objects and their controller
      // only slow the start), no profiling endpoints, no Endpoints upkeep for the kubernetes
      // Service (no kubelet proxies to it).
      "--enable-priority-and-fairness=false",
      "--profiling=false",
      "--endpoint-reconciler-type=none",
      "--v=0",
  };
  if (!apiserver_->Start(argv, {}, &error)) return Internal("kube-apiserver: " + error);

  BAO_RETURN_IF_ERROR(WaitFor("/readyz", std::chrono::seconds(60), [&](std::string* state) {
    Result<KubeReply> r = Call("GET", "/readyz");
    *state = r.ok() ? r->Describe() : r.status().message();
    return r.ok() && r->status == 200;
  }));
  // The system namespaces controller creates "default" right after start-up.
  return WaitFor("namespace default", std::chrono::seconds(30), [&](std::string* state) {
    Result<KubeReply> r = Call("GET", "/api/v1/namespaces/default");
    *state = r.ok() ? r->Describe() : r.status().message();
    return r.ok() && r->status == 200;
  });
}

Status RealKubeApiServer::Start() {
  std::string binary = Binary();
  if (binary.empty()) {
    return FailedPrecondition("kube-apiserver is not installed at " + PeerBinary("kube-apiserver") +
                              " or etcd is not in PATH (" +
                              (EtcdBinary().empty() ? "missing" : EtcdBinary()) +
                              "): run scripts/setup.sh --peers");
  }
  if (dir_.path().empty()) return Internal("cannot create a temporary directory");
  BAO_RETURN_IF_ERROR(StartEtcd());
  return StartApiServer();
}

void RealKubeApiServer::Stop() {
  // kube-apiserver first: it would otherwise spend its shutdown retrying a vanished etcd.
  if (apiserver_ && apiserver_->Running()) apiserver_->Stop(std::chrono::milliseconds(5000));
  if (etcd_ && etcd_->Running()) etcd_->Stop(std::chrono::milliseconds(5000));
}

Result<KubeReply> RealKubeApiServer::Call(const std::string& method, const std::string& path,
                                          const json& body, const std::string& token,
                                          const std::string& content_type) {
  http::Request req;
  req.method = method;
  req.url = url_ + path;
  req.tls = Tls();
  req.connect_timeout = std::chrono::milliseconds(2000);
  req.timeout = std::chrono::seconds(30);
  req.headers.push_back({"Authorization", "Bearer " + (token.empty() ? admin_token_ : token)});
  req.headers.push_back({"Accept", "application/json"});
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.push_back({"Content-Type", content_type});
  }
  Result<http::Response> r = http_.Do(req);
  if (!r.ok()) return r.status().WithContext(method + " " + path);
  KubeReply reply;
  reply.status = r->status;
  reply.body = json::parse(r->body, nullptr, false);
  if (reply.body.is_discarded()) reply.body = r->body.empty() ? json() : json(r->body);
  return reply;
}

Status RealKubeApiServer::Apply(const std::string& yaml, const std::string& default_namespace) {
  int index = 0;
  for (const std::string& doc : SplitDocuments(yaml)) {
    ++index;
    Result<json> object = YamlToJson(doc);
    if (!object.ok()) {
      return object.status().WithContext("YAML document " + std::to_string(index));
    }
    if (object->is_null()) continue;  // empty, or comments only
    if (!object->is_object()) {
      return InvalidArgument("YAML document " + std::to_string(index) + " is not a mapping");
    }
    if (Str(*object, "kind") == "List" && object->contains("items")) {
      for (const json& item : (*object)["items"]) {
        BAO_RETURN_IF_ERROR(ApplyObject(item, default_namespace));
      }
      continue;
    }
    BAO_RETURN_IF_ERROR(ApplyObject(*object, default_namespace));
  }
  return Status::Ok();
}

Status RealKubeApiServer::ApplyFile(const std::string& path, const std::string& default_namespace) {
  if (!std::filesystem::exists(path)) return NotFound("no file " + path);
  Status s = Apply(ReadText(path), default_namespace);
  return s.ok() ? s : s.WithContext(path);
}

Status RealKubeApiServer::ApplyObject(const json& input, const std::string& default_namespace) {
  json object = input;
  std::string api_version = Str(object, "apiVersion"), kind = Str(object, "kind");
  std::string name = Str(object["metadata"], "name");
  if (api_version.empty() || kind.empty() || name.empty()) {
    return InvalidArgument("an object without apiVersion, kind or metadata.name: " +
                           object.dump().substr(0, 200));
  }
  size_t slash = api_version.find('/');
  std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
  for (const char* skipped : kSkippedGroups) {
    if (group == skipped) {
      std::cerr << "RealKubeApiServer::Apply: skipping " << kind << " " << name << " (" << group
                << " is not served)\n";
      return Status::Ok();
    }
  }
  const KindInfo* info = nullptr;
  for (const KindInfo& k : kKinds) {
    if (group == k.group && kind == k.kind) info = &k;
  }
  if (info == nullptr) {
    return InvalidArgument("apply " + kind + " " + name + ": kind " + kind + " of " + api_version +
                           " is not in RealKubeApiServer's table");
  }
  std::string path = group.empty() ? "/api/" + api_version : "/apis/" + api_version;
  std::string what = kind + " " + name;
  if (info->namespaced) {
    std::string ns = Str(object["metadata"], "namespace");
    if (ns.empty()) ns = default_namespace.empty() ? "default" : default_namespace;
    object["metadata"]["namespace"] = ns;
    path += "/namespaces/" + http::UrlEncode(ns);
    what = kind + " " + ns + "/" + name;
  }
  path += std::string("/") + info->plural + "/" + http::UrlEncode(name) +
          "?fieldManager=" + kFieldManager + "&force=true&fieldValidation=Strict";
  Result<KubeReply> r = Call("PATCH", path, object, "", "application/apply-patch+yaml");
  if (!r.ok()) return r.status().WithContext("apply " + what);
  if (!r->ok()) {
    // A field the schema does not declare fails the apply with HTTP 500 "failed to create
    // typed patch object" before fieldValidation=Strict sees it (kubernetes/kubernetes#122480):
    // the caller's input is wrong all the same.
    bool bad_patch = r->Describe().find("failed to create typed patch object") != std::string::npos;
    Code code = r->status == 403               ? Code::kPermissionDenied
                : r->status == 404             ? Code::kNotFound
                : r->status < 500 || bad_patch ? Code::kInvalidArgument
                                               : Code::kUnavailable;
    return Status(code, "apply " + what + ": " + r->Describe());
  }
  if (kind == "CustomResourceDefinition") return WaitForCrdEstablished(name);
  return Status::Ok();
}

Status RealKubeApiServer::WaitForCrdEstablished(const std::string& name) {
  return WaitFor("CRD " + name + " Established", std::chrono::seconds(30), [&](std::string* state) {
    Result<KubeReply> r =
        Call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + name);
    if (!r.ok() || !r->ok()) {
      *state = r.ok() ? r->Describe() : r.status().message();
      return false;
    }
    const json& conditions = r->body["status"]["conditions"];
    *state = conditions.dump();
    if (!conditions.is_array()) return false;
    for (const json& c : conditions) {
      if (Str(c, "type") == "Established" && Str(c, "status") == "True") return true;
    }
    return false;
  });
}

Result<std::string> RealKubeApiServer::ServiceAccountToken(
    const std::string& ns, const std::string& sa, const std::vector<std::string>& audiences,
    std::chrono::seconds ttl) {
  json spec = {{"expirationSeconds", ttl.count()}};
  spec["audiences"] = audiences.empty() ? std::vector<std::string>{kIssuer} : audiences;
  json request = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  std::string what = "TokenRequest for ServiceAccount " + ns + "/" + sa;
  Result<KubeReply> r = Call("POST",
                             "/api/v1/namespaces/" + http::UrlEncode(ns) + "/serviceaccounts/" +
                                 http::UrlEncode(sa) + "/token",
                             request);
  if (!r.ok()) return r.status().WithContext(what);
  std::string token = r->ok() ? Str(r->body["status"], "token") : "";
  if (token.empty()) return Internal(what + ": " + r->Describe());
  RegisterSecret(token);
  return token;
}

}  // namespace bao::testing
