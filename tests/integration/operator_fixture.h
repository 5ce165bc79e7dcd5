// The backup manager end to end, shared by two programs: real_k8s_operator_e2e_test.cc runs it
// against a real kube-apiserver + etcd (the chart's CRDs and RBAC, the manager authenticated
// as the chart's ServiceAccount), operator_test.cc against the project's API imitation for
// what a real server cannot do on demand (a failure injected between two writes). The API
// server holds the OpenBaoClusters, Secrets and Jobs; the test drives reconciles with a fake
// clock and plays the kubelet and the Job controller. To "run" a Job it:
//   - writes every Secret the Pod mounts into <root>/<mountPath>/<key> (base64-decoded),
//   - rewrites the arguments: the in-cluster OpenBao addresses
//     https://<cluster>-<i>.<cluster>.<ns>.svc:8200 become the OpenBao test server's node i,
//     mount paths (/etc/bao/..., /var/run/secrets/...) and /dev/termination-log move under
//     <root>, the command becomes the bao-backup binary of this build,
//   - runs the real executor (TLS to the OpenBao test server with the CA from the
//     <cluster>-tls-ca Secret, token from the token Secret, MinIO as S3 with the credentials
//     Secret), then finishes the Job as support/k8s_operator.h does (a Pod terminated with the
//     result file as its message, the Job's conditions in the order a real server accepts).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "crypto/crypto.h"
#include "http/client.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "k8s/leader.h"
#include "operator/backup_manager.h"
#include "operator/job_builder.h"
#include "support/bao_testserver.h"
#include "support/k8s_operator.h"
#include "support/k8s_testserver.h"
#include "support/minio.h"
#include "support/testing.h"

namespace bao::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TimePoint At(const char* rfc3339) {
  return *ParseRfc3339(rfc3339);
}

constexpr const char* kNs = "ns1";
constexpr const char* kToken = "s.backup-token-for-operator-tests";

class OperatorFixture : public ::testing::Test {
 protected:
  explicit OperatorFixture(bool real) : real_(real) {}

  void SetUp() override {
    if (real_) {
      StartRealServer();
    } else {
      std::string error;
      ASSERT_TRUE(k8s_.Start({}, &error)) << error;
      k8s::Config config;
      config.server = k8s_.url();
      config.default_namespace = kNs;
      client_ = std::make_unique<k8s::Client>(config);
    }
    if (HasFatalFailure() || IsSkipped()) return;
    k8s::Client* manager = op_client_ ? op_client_.get() : client_.get();
    events_ = std::make_unique<k8s::EventRecorder>(manager, "bao-backup-operator", &clock_);
  }

  // etcd + kube-apiserver, the chart installed (release bao-backup in bao-backup-system), the
  // namespace kNs; client_ is the admin, op_client_ the chart's ServiceAccount.
  void StartRealServer() {
    if (RealKubeApiServer::Binary().empty() || PeerBinary("helm").empty()) {
      std::string why = "kube-apiserver, etcd or helm is not installed (" +
                        PeerBinary("kube-apiserver") + "): run scripts/setup.sh --peers";
      const char* ci = std::getenv("CI");
      if (ci && *ci && std::string(ci) != "false") FAIL() << why;  // CI installs the peers
      GTEST_SKIP() << why;
    }
    real_server_ = std::make_unique<RealKubeApiServer>();
    Status s = real_server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    Result<std::string> token = InstallChart(*real_server_, "bao-backup", "bao-backup-system");
    ASSERT_TRUE(token.ok()) << token.status().ToString() << "\n" << real_server_->Logs();
    op_token_ = *token;
    client_ = std::make_unique<k8s::Client>(real_server_->AdminConfig());
    op_client_ = std::make_unique<k8s::Client>(real_server_->ConfigFor(op_token_, kNs));
    ASSERT_TRUE(
        real_server_
            ->Apply(std::string("apiVersion: v1\nkind: Namespace\nmetadata: {name: ") + kNs + "}\n")
            .ok());
  }

  // A kubeconfig for `bao-backup operator`: the chart's ServiceAccount on the real server, any
  // token on the imitation.
  std::string OperatorKubeconfig() {
    if (real_) return Kubeconfig(*real_server_, op_token_, kNs);
    return "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n"
           "  cluster:\n    server: " +
           k8s_.url() +
           "\nusers:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: t\n"
           "  context:\n    cluster: t\n    user: u\n    namespace: ns1\n";
  }

  // A reconcile by a fresh manager as `as` (default: the manager's identity), its Events
  // recorded as that identity too.
  Result<op::ReconcileResult> TryReconcile(const std::string& name, k8s::Client* as) {
    op::ManagerOptions o;
    o.clock = &clock_;
    o.job.default_image = "bao-backup:test";
    k8s::EventRecorder events(as, "bao-backup-operator", &clock_);
    return op::BackupManager(as, &events, o).Reconcile(kNs, name);
  }

  // A fresh manager: every reconcile in these tests may use a new one ("restart").
  std::unique_ptr<op::BackupManager> NewManager() {
    op::ManagerOptions o;
    o.clock = &clock_;
    o.job.default_image = "bao-backup:test";
    return std::make_unique<op::BackupManager>(op_client_ ? op_client_.get() : client_.get(),
                                               events_.get(), o);
  }

  op::ReconcileResult Reconcile(const std::string& name) {
    Result<op::ReconcileResult> r = NewManager()->Reconcile(kNs, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : op::ReconcileResult{};
  }

  void StartBackends() {
    BaoTestServerOptions o;
    o.tls = true;
    bao_ = std::make_unique<BaoTestServer>(o);
    Status s = bao_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(bao_->AddToken(kToken, {{"sys/storage/raft/snapshot", {"read"}}}).ok());
    std::string error;
    ASSERT_TRUE(minio_.Start(&error)) << error;
    ASSERT_TRUE(minio_.CreateBucket("backups", &error)) << error;
    CreateSecret("s3-creds",
                 {{"accessKeyId", minio_.access_key()}, {"secretAccessKey", minio_.secret_key()}});
    CreateSecret("bao-token", {{"token", kToken}});
  }

  void CreateSecret(const std::string& name, const std::map<std::string, std::string>& data) {
    json d = json::object();
    for (const auto& [k, v] : data) d[k] = crypto::Base64Encode(v);
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", name}, {"namespace", kNs}}},
                   {"data", d}};
    ASSERT_TRUE(client_->Create(k8s::kSecrets, kNs, secret).ok());
  }

  json BackupSpec() {
    return {{"schedule", "* * * * *"},
            {"target",
             {{"provider", "s3"},
              {"endpoint", minio_.port() ? minio_.endpoint() : "http://127.0.0.1:1"},
              {"bucket", "backups"},
              {"pathPrefix", "prod"},
              {"usePathStyle", true},
              {"credentialsSecretRef", {{"name", "s3-creds"}}}}},
            {"tokenSecretRef", {{"name", "bao-token"}}},
            {"retention", {{"maxCount", 1}}}};
  }

  // Creates a Running cluster (status set through the subresource) and its CA Secret.
  void CreateCluster(const std::string& name, const json& backup, json extra_spec = {},
                     json annotations = {}) {
    Result<json> c = TryCreateCluster(name, backup, extra_spec, annotations);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    SetStatus(name, {{"phase", "Running"}, {"currentVersion", "2.1.0"}});
    auto ca = tls_ca_.find(name);
    CreateSecret(name + "-tls-ca", {{"ca.crt", ca != tls_ca_.end() ? ca->second
                                               : bao_              ? ReadText(bao_->ca_file())
                                                                   : "test CA"}});
  }
  Result<json> TryCreateCluster(const std::string& name, const json& backup, const json& extra_spec,
                                const json& annotations = {}) {
    json spec = {{"version", "2.1.0"},
                 {"replicas", 3},
                 {"backup", backup},
                 {"unknownVendorField", {{"keep", "me"}}}};
    if (extra_spec.is_object()) spec.update(extra_spec);
    json cluster = {{"apiVersion", "openbao.org/v1alpha1"},
                    {"kind", "OpenBaoCluster"},
                    {"metadata", {{"name", name}, {"namespace", kNs}}},
                    {"spec", spec}};
    if (annotations.is_object()) cluster["metadata"]["annotations"] = annotations;
    return client_->Create(k8s::kOpenBaoClusters, kNs, cluster);
  }

  void SetStatus(const std::string& name, const json& status) {
    Result<json> r = client_->PatchStatus(k8s::kOpenBaoClusters, kNs, name, {{"status", status}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  json Cluster(const std::string& name) {
    Result<json> c = client_->Get(k8s::kOpenBaoClusters, kNs, name);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : json::object();
  }
  json BackupStatus(const std::string& name) {
    json c = Cluster(name);
    return c.contains("status") && c["status"].contains("backup") ? c["status"]["backup"]
                                                                  : json::object();
  }

  std::vector<json> Jobs() {
    Result<k8s::ObjectList> l = client_->List(k8s::kJobs, kNs);
    EXPECT_TRUE(l.ok());
    return l.ok() ? l->items : std::vector<json>{};
  }

  // Events with `reason` about `involved`: how many Event objects, and their summed `count`
  // (repeats of one Event aggregate into its count).
  std::pair<int, int> Events(const std::string& reason, const std::string& involved) {
    Result<k8s::ObjectList> l = client_->List(k8s::kEvents, kNs);
    int objects = 0, count = 0;
    for (const json& e : l.ok() ? l->items : std::vector<json>{}) {
      if (e.value("reason", "") == reason && e["involvedObject"].value("name", "") == involved) {
        ++objects;
        count += e.value("count", 1);
      }
    }
    return {objects, count};
  }
  bool HasEvent(const std::string& reason, const std::string& involved) {
    return Events(reason, involved).first > 0;
  }
  int EventCount(const std::string& reason, const std::string& involved) {
    return Events(reason, involved).second;
  }

  json Condition(const std::string& name) {
    json c = Cluster(name);
    if (!c.contains("status") || !c["status"].contains("conditions")) return nullptr;
    for (const json& cond : c["status"]["conditions"]) {
      if (cond["type"] == op::kConditionBackupConfigured) return cond;
    }
    return nullptr;
  }

  // The condition `type` of the cluster, or null.
  json ConditionOf(const std::string& name, const std::string& type) {
    json c = Cluster(name);
    if (!c.contains("status") || !c["status"].contains("conditions")) return nullptr;
    for (const json& cond : c["status"]["conditions"]) {
      if (cond["type"] == type) return cond;
    }
    return nullptr;
  }

  // The types ("Normal", "Warning") of the Events with `reason` about `involved`.
  std::set<std::string> EventTypes(const std::string& reason, const std::string& involved) {
    Result<k8s::ObjectList> l = client_->List(k8s::kEvents, kNs);
    std::set<std::string> types;
    for (const json& e : l.ok() ? l->items : std::vector<json>{}) {
      if (e.value("reason", "") == reason && e["involvedObject"].value("name", "") == involved) {
        types.insert(e.value("type", ""));
      }
    }
    return types;
  }

  // The keys of the objects in MinIO's bucket "backups" that end with .snap, sorted.
  std::vector<std::string> ObjectKeys() {
    RunResult r = minio_.Aws({"s3", "ls", "--recursive", "s3://backups/"});
    std::vector<std::string> keys;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      size_t space = line.rfind(' ');
      std::string key = space == std::string::npos ? line : line.substr(space + 1);
      if (key.ends_with(".snap")) keys.push_back(key);
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  // The next API request with `method` whose path ends with `suffix` fails with HTTP 500 and
  // changes nothing: the manager is cut off there, as by a crash.
  void FailNext(const std::string& method, const std::string& suffix) {
    ASSERT_FALSE(real_) << "faults are injected by the imitation only";
    http::Client c;
    http::Request r;
    r.method = "POST";
    r.url = k8s_.url() + "/_test/faults";
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = json{{"faults", json::array({{{"method", method}, {"pathSuffix", suffix}}})}}.dump();
    Result<http::Response> res = c.Do(r);
    ASSERT_TRUE(res.ok() && res->ok());
  }

  // Plays the kubelet and the Job controller for a run that ended with `exit_code` and the
  // termination `message`, with the shapes a real API server accepts (support/k8s_jobs.h). The
  // kubelet keeps only the last 4096 bytes of a termination message; so does this.
  void FinishJob(const std::string& job_name, int exit_code, const std::string& message) {
    Result<json> job = client_->Get(k8s::kJobs, kNs, job_name);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    std::string kept = message.size() > 4096 ? message.substr(message.size() - 4096) : message;
    Status s = testing::FinishJob(*client_, *job, exit_code == 0, kept, clock_.Now(), clock_.Now());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void CreateTokenSecrets() {
    CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
    CreateSecret("bao-token", {{"token", kToken}});
  }

  // Plays kubelet + Job controller for `job` (see the file comment). Returns the exit code.
  int RunJob(const json& job) {
    const std::string name = job["metadata"]["annotations"][op::kAnnotationCluster];
    auto real = bao_urls_.find(name);
    const std::vector<std::string> urls = real != bao_urls_.end() ? real->second
                                          : bao_                  ? bao_->NodeUrls()
                                                                  : std::vector<std::string>{};
    Result<LocalRun> r = RunJobLocally(*client_, job, urls, BuildBinary("bao-backup"), 180s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return -1;
    last_run_ = r->run;
    FinishJob(job["metadata"]["name"], r->run.exit_code, r->message);
    return r->run.exit_code;
  }

  int CountObjects() {
    RunResult r = minio_.Aws({"s3", "ls", "--recursive", "s3://backups/"});
    int n = 0;
    size_t pos = 0;
    while ((pos = r.out.find(".snap\n", pos)) != std::string::npos) {
      ++n;
      ++pos;
    }
    return n;
  }

  const bool real_;
  ManualClock clock_{At("2025-01-15T03:00:30Z")};
  // RunJob's OpenBao for a cluster name (real clusters); others use the OpenBao test server.
  std::map<std::string, std::vector<std::string>> bao_urls_;
  std::map<std::string, std::string> tls_ca_;  // CreateCluster's <name>-tls-ca, by cluster
  K8sTestServer k8s_;
  std::unique_ptr<RealKubeApiServer> real_server_;
  std::string op_token_;
  std::unique_ptr<k8s::Client> client_;     // the API as admin (the test's own writes)
  std::unique_ptr<k8s::Client> op_client_;  // the manager's identity (real server only)
  std::unique_ptr<k8s::EventRecorder> events_;
  std::unique_ptr<BaoTestServer> bao_;
  MinioServer minio_;
  RunResult last_run_;
};

}  // namespace
}  // namespace bao::testing
