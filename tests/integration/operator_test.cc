// The backup manager end to end: the API test server holds the OpenBaoClusters, Secrets and
// Jobs; the test drives reconciles with a fake clock and plays the kubelet and the Job
// controller. To "run" a Job it:
//   - writes every Secret the Pod mounts into <root>/<mountPath>/<key> (base64-decoded),
//   - rewrites the arguments: the in-cluster OpenBao addresses
//     https://<cluster>-<i>.<cluster>.<ns>.svc:8200 become the OpenBao test server's node i,
//     mount paths (/etc/bao/..., /var/run/secrets/...) and /dev/termination-log move under
//     <root>, the command becomes the bao-backup binary of this build,
//   - runs the real executor (TLS to the OpenBao test server with the CA from the
//     <cluster>-tls-ca Secret, token from the token Secret, MinIO as S3 with the credentials
//     Secret), then creates the Pod with the terminated state (message = the result file) and
//     sets the Job's Complete/Failed condition.
#include <gtest/gtest.h>

#include <memory>
#include <mutex>

#include "crypto/crypto.h"
#include "http/client.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "k8s/leader.h"
#include "operator/backup_manager.h"
#include "operator/job_builder.h"
#include "support/bao_testserver.h"
#include "support/k8s_jobs.h"
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

class OperatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(k8s_.Start({}, &error)) << error;
    k8s::Config config;
    config.server = k8s_.url();
    config.default_namespace = kNs;
    client_ = std::make_unique<k8s::Client>(config);
    events_ = std::make_unique<k8s::EventRecorder>(client_.get(), "bao-backup-operator", &clock_);
  }

  // A fresh manager: every reconcile in these tests may use a new one ("restart").
  std::unique_ptr<op::BackupManager> NewManager() {
    op::ManagerOptions o;
    o.clock = &clock_;
    o.job.default_image = "bao-backup:test";
    return std::make_unique<op::BackupManager>(client_.get(), events_.get(), o);
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
  void CreateCluster(const std::string& name, const json& backup, json extra_spec = {}) {
    json spec = {{"version", "2.1.0"},
                 {"replicas", 3},
                 {"backup", backup},
                 {"unknownVendorField", {{"keep", "me"}}}};
    if (extra_spec.is_object()) spec.update(extra_spec);
    json cluster = {{"apiVersion", "openbao.org/v1alpha1"},
                    {"kind", "OpenBaoCluster"},
                    {"metadata", {{"name", name}, {"namespace", kNs}}},
                    {"spec", spec}};
    Result<json> c = client_->Create(k8s::kOpenBaoClusters, kNs, cluster);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    SetStatus(name, {{"phase", "Running"}, {"currentVersion", "2.1.0"}});
    CreateSecret(name + "-tls-ca", {{"ca.crt", bao_ ? ReadText(bao_->ca_file()) : "test CA"}});
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

  bool HasEvent(const std::string& reason, const std::string& involved) {
    Result<k8s::ObjectList> l = client_->List(k8s::kEvents, kNs);
    if (!l.ok()) return false;
    for (const json& e : l->items) {
      if (e.value("reason", "") == reason && e["involvedObject"].value("name", "") == involved) {
        return true;
      }
    }
    return false;
  }

  json Condition(const std::string& name) {
    json c = Cluster(name);
    if (!c.contains("status") || !c["status"].contains("conditions")) return nullptr;
    for (const json& cond : c["status"]["conditions"]) {
      if (cond["type"] == op::kConditionBackupConfigured) return cond;
    }
    return nullptr;
  }

  // The next API request with `method` whose path ends with `suffix` fails with HTTP 500 and
  // changes nothing: the manager is cut off there, as by a crash.
  void FailNext(const std::string& method, const std::string& suffix) {
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

  // How often Event `reason` was recorded about `involved` (Events repeat through `count`).
  int EventCount(const std::string& reason, const std::string& involved) {
    Result<k8s::ObjectList> l = client_->List(k8s::kEvents, kNs);
    int n = 0;
    for (const json& e : l.ok() ? l->items : std::vector<json>{}) {
      if (e.value("reason", "") == reason && e["involvedObject"].value("name", "") == involved) {
        n += e.value("count", 1);
      }
    }
    return n;
  }

  void CreateTokenSecrets() {
    CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
    CreateSecret("bao-token", {{"token", kToken}});
  }

  // Plays kubelet + Job controller for `job` (see the file comment). Returns the exit code.
  int RunJob(const json& job) {
    TempDir root;
    const json& pod = job["spec"]["template"]["spec"];
    const json& container = pod["containers"][0];
    std::map<std::string, std::string> volume_secret;
    for (const json& v : pod["volumes"]) {
      if (v.contains("secret")) volume_secret[v["name"]] = v["secret"]["secretName"];
    }
    for (const json& m : container["volumeMounts"]) {
      auto it = volume_secret.find(m["name"]);
      if (it == volume_secret.end()) continue;
      Result<json> secret = client_->Get(k8s::kSecrets, kNs, it->second);
      EXPECT_TRUE(secret.ok()) << it->second;
      if (!secret.ok()) return -1;
      std::string dir = root.path() + m["mountPath"].get<std::string>();
      std::filesystem::create_directories(dir);
      for (const auto& [key, value] : (*secret)["data"].items()) {
        WriteText(dir + "/" + key, *crypto::Base64Decode(value.get<std::string>()));
      }
    }
    const std::string name = job["metadata"]["labels"][op::kLabelCluster];
    std::vector<std::string> argv = {BuildBinary("bao-backup")};
    for (const json& a : container["args"]) {
      std::string arg = a;
      std::string prefix = "https://" + name + "-";
      if (arg.rfind(prefix, 0) == 0) {
        int i = std::stoi(arg.substr(prefix.size()));
        arg = bao_->Url(i % static_cast<int>(bao_->NodeUrls().size()));
      } else if (arg.rfind("/etc/bao/", 0) == 0 || arg.rfind("/var/run/secrets/", 0) == 0) {
        arg = root.path() + arg;
      } else if (arg == op::kResultFile) {
        arg = root.File("termination-log");
      }
      argv.push_back(arg);
    }
    RunResult r = testing::Run(argv, {}, 60s);
    last_run_ = r;
    std::string message = ReadText(root.File("termination-log"));
    FinishJob(job["metadata"]["name"], r.exit_code, message);
    return r.exit_code;
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

  ManualClock clock_{At("2025-01-15T03:00:30Z")};
  K8sTestServer k8s_;
  std::unique_ptr<k8s::Client> client_;
  std::unique_ptr<k8s::EventRecorder> events_;
  std::unique_ptr<BaoTestServer> bao_;
  MinioServer minio_;
  RunResult last_run_;
};

TEST_F(OperatorTest, ScheduledBackupEndToEndWithRestartsFailureAndRetention) {
  StartBackends();
  CreateCluster("bao", BackupSpec());

  // First look: no slot has passed since the controller saw the cluster.
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  EXPECT_TRUE(Jobs().empty());
  EXPECT_EQ(BackupStatus("bao")["nextScheduledBackup"], "2025-01-15T03:01:00Z");
  ASSERT_TRUE(client_->Get(k8s::kServiceAccounts, kNs, "bao-backup-serviceaccount").ok());

  // The slot 03:01 passes; a restarted controller reconciles twice: one Job.
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  const json& job = jobs[0];
  EXPECT_EQ(job["metadata"]["name"], "backup-bao-20250115-030100");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["kind"], "OpenBaoCluster");
  const json& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"], "bao-backup-serviceaccount");
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "bao-backup:test");
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"][0], "ALL");
  EXPECT_EQ(c["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  std::string args = c["args"].dump();
  EXPECT_NE(args.find("\"https://bao-2.bao.ns1.svc:8200\""), std::string::npos) << args;
  EXPECT_NE(args.find("\"--result-file\",\"/dev/termination-log\""), std::string::npos);
  EXPECT_NE(args.find("\"--bao-token-file\",\"/etc/bao/backup/token/token\""), std::string::npos);
  EXPECT_NE(args.find("\"--max-count\",\"1\""), std::string::npos);
  EXPECT_EQ(job["spec"]["backoffLimit"], 0);
  EXPECT_TRUE(job["spec"].contains("activeDeadlineSeconds"));
  EXPECT_TRUE(job["spec"].contains("ttlSecondsAfterFinished"));
  json lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["operation"], "Backup");

  // The executor runs; the status fills in; the lock is released.
  ASSERT_EQ(RunJob(job), 0) << last_run_.err;
  clock_.Set(At("2025-01-15T03:01:40Z"));
  Reconcile("bao");
  Reconcile("bao");  // repeated: nothing counted twice
  json b = BackupStatus("bao");
  EXPECT_TRUE(b["lastBackupName"].get<std::string>().starts_with("prod/ns1/bao/")) << b;
  EXPECT_GT(b["lastBackupSize"].get<int64_t>(), 0);
  EXPECT_FALSE(b["lastBackupDuration"].get<std::string>().empty());
  EXPECT_EQ(b["consecutiveFailures"], 0);
  EXPECT_EQ(b["lastAttemptScheduledTime"], "2025-01-15T03:01:00Z");
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_EQ(Cluster("bao")["spec"]["unknownVendorField"]["keep"], "me");
  EXPECT_TRUE(HasEvent("BackupSucceeded", "bao"));
  EXPECT_EQ(CountObjects(), 1);

  // 03:02: OpenBao fails; the failure is counted once.
  ASSERT_TRUE(bao_->SetFaults({{"fail_status", 500}, {"count", 100}}).ok());
  clock_.Set(At("2025-01-15T03:02:01Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  jobs = Jobs();
  ASSERT_EQ(jobs.size(), 2u);
  json failing = jobs[0]["metadata"]["name"] == "backup-bao-20250115-030200" ? jobs[0] : jobs[1];
  EXPECT_NE(RunJob(failing), 0);
  Reconcile("bao");
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 1) << b;
  EXPECT_FALSE(b["lastFailureReason"].get<std::string>().empty());
  EXPECT_TRUE(HasEvent("BackupFailed", "bao"));

  // 03:03: success again resets the count; retention (maxCount 1) pruned the older object.
  ASSERT_TRUE(bao_->ClearFaults().ok());
  clock_.Set(At("2025-01-15T03:03:02Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  for (const json& j : Jobs()) {
    if (j["metadata"]["name"] == "backup-bao-20250115-030300") {
      ASSERT_EQ(RunJob(j), 0) << last_run_.err;
    }
  }
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 0) << b;
  EXPECT_EQ(CountObjects(), 1);
  EXPECT_EQ(Jobs().size(), 3u);
}

TEST_F(OperatorTest, InterruptedAfterTakingTheLockResumesTheSameJob) {
  StartBackends();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  // Pretend the controller died between the lock and the Job creation.
  ASSERT_TRUE(client_->Delete(k8s::kJobs, kNs, "backup-bao-20250115-030100").ok());
  clock_.Set(At("2025-01-15T03:01:20Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "resumed");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["name"], "backup-bao-20250115-030100");
  ASSERT_EQ(RunJob(jobs[0]), 0) << last_run_.err;
  Reconcile("bao");
  EXPECT_EQ(BackupStatus("bao")["consecutiveFailures"], 0);
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
}

TEST_F(OperatorTest, PreconditionsSkipTheSlotWithAReason) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  struct Case {
    std::string name, reason;
    json status;
    json spec;
  };
  std::vector<Case> cases = {
      {"notrunning", "ClusterNotRunning", {{"phase", "Initializing"}}, {}},
      {"upgrading", "UpgradeInProgress", {{"upgrade", {{"targetVersion", "2.2.0"}}}}, {}},
      {"pending", "UpgradePending", {}, {{"version", "2.2.0"}}},
      {"restoring", "RestoreInProgress", {}, {}},
      {"locked",
       "OperationLocked",
       {{"operationLock", {{"operation", "Upgrade"}, {"holder", "x"}}}},
       {}},
  };
  for (const Case& c : cases) {
    CreateCluster(c.name, BackupSpec(), c.spec);
    if (!c.status.empty()) SetStatus(c.name, c.status);
    Reconcile(c.name);
  }
  json restore = {{"apiVersion", "openbao.org/v1alpha1"},
                  {"kind", "OpenBaoRestore"},
                  {"metadata", {{"name", "r1"}, {"namespace", kNs}}},
                  {"spec", {{"cluster", "restoring"}}}};
  ASSERT_TRUE(client_->Create(k8s::kOpenBaoRestores, kNs, restore).ok());
  clock_.Set(At("2025-01-15T03:01:05Z"));
  for (const Case& c : cases) {
    op::ReconcileResult r = Reconcile(c.name);
    EXPECT_EQ(r.outcome, "skipped:" + c.reason) << c.name;
    json b = BackupStatus(c.name);
    EXPECT_EQ(b["lastSkippedScheduledTime"], "2025-01-15T03:01:00Z") << c.name;
    EXPECT_TRUE(b["lastSkipReason"].get<std::string>().starts_with(c.reason)) << b;
    EXPECT_TRUE(HasEvent("BackupSkipped", c.name)) << c.name;
    // The slot is consumed: no retry within it.
    EXPECT_EQ(Reconcile(c.name).outcome, "idle") << c.name;
  }
  EXPECT_TRUE(Jobs().empty());
}

TEST_F(OperatorTest, BackupRunningSkipsTheNextSlotAndTriggerIsOneShot) {
  StartBackends();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:BackupRunning");
  EXPECT_EQ(Jobs().size(), 1u);
  ASSERT_EQ(RunJob(Jobs()[0]), 0) << last_run_.err;
  Reconcile("bao");

  // Manual trigger: one Job now, the annotation removed, no second Job on the next reconcile.
  ASSERT_TRUE(client_
                  ->MergePatch(k8s::kOpenBaoClusters, kNs, "bao",
                               {{"metadata", {{"annotations", {{op::kAnnotationTrigger, "now"}}}}}})
                  .ok());
  clock_.Set(At("2025-01-15T03:02:30Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  EXPECT_FALSE(Cluster("bao")["metadata"]
                   .value("annotations", json::object())
                   .contains(op::kAnnotationTrigger));
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  EXPECT_EQ(Jobs().size(), 2u);
  bool found = false;
  for (const json& j : Jobs()) found |= j["metadata"]["name"] == "backup-bao-20250115-030230";
  EXPECT_TRUE(found);
}

TEST_F(OperatorTest, BadInputsBecomeConditionsAndEventsAndOthersAreStillServed) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  json cron = BackupSpec();
  cron["schedule"] = "61 * * * *";
  json missing = BackupSpec();
  missing["target"]["credentialsSecretRef"]["name"] = "nope";
  json cross = BackupSpec();
  cross["tokenSecretRef"]["namespace"] = "other";
  json none = BackupSpec();
  none.erase("tokenSecretRef");
  json bad_part = BackupSpec();
  bad_part["target"]["partSize"] = 1024;
  struct Case {
    std::string name, reason, field;
    json spec;
  };
  std::vector<Case> cases = {
      {"badcron", "InvalidSchedule", "spec.backup.schedule", cron},
      {"missing", "SecretNotFound", "spec.backup.target.credentialsSecretRef.name", missing},
      {"cross", "CrossNamespaceReference", "spec.backup.tokenSecretRef.namespace", cross},
      {"none", "NoBackupToken", "tokenSecretRef", none},
      {"badpart", "InvalidSpec", "spec.backup.target.partSize", bad_part},
  };
  for (const Case& c : cases) CreateCluster(c.name, c.spec);
  CreateCluster("good", BackupSpec());
  // OIDC implies the JWT role: no token needed.
  json oidc = BackupSpec();
  oidc.erase("tokenSecretRef");
  CreateCluster("oidc", oidc, {{"selfInit", {{"oidc", {{"enabled", true}}}}}});
  for (int round = 0; round < 2; ++round) {
    for (const Case& c : cases) EXPECT_EQ(Reconcile(c.name).outcome, "invalid") << c.name;
    Reconcile("good");
    Reconcile("oidc");
    clock_.Set(At("2025-01-15T03:01:05Z"));
  }
  for (const Case& c : cases) {
    json cond = Condition(c.name);
    ASSERT_TRUE(cond.is_object()) << c.name;
    EXPECT_EQ(cond["status"], "False") << c.name;
    EXPECT_EQ(cond["reason"], c.reason) << c.name << cond;
    EXPECT_NE(cond["message"].get<std::string>().find(c.field), std::string::npos) << cond;
    EXPECT_TRUE(HasEvent(c.reason, c.name)) << c.name;
  }
  std::vector<std::string> names;
  for (const json& j : Jobs()) names.push_back(j["metadata"]["name"]);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"backup-good-20250115-030100",
                                             "backup-oidc-20250115-030100"}));
  EXPECT_EQ(Condition("good")["status"], "True");
  // The OIDC cluster's Job logs in with the implied role and the projected token.
  for (const json& j : Jobs()) {
    if (j["metadata"]["name"] != "backup-oidc-20250115-030100") continue;
    std::string args = j["spec"]["template"]["spec"]["containers"][0]["args"].dump();
    EXPECT_NE(args.find("\"--jwt-role\",\"openbao-operator-backup\""), std::string::npos);
    std::string volumes = j["spec"]["template"]["spec"]["volumes"].dump();
    EXPECT_NE(volumes.find("\"audience\":\"openbao-internal\""), std::string::npos) << volumes;
  }
}

TEST_F(OperatorTest, CrashAfterTheLockBeforeTheJobResumesExactlyOneJob) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  FailNext("POST", "/namespaces/ns1/jobs");
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());  // lock taken, Job creation cut off
  json lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["holder"], "bao-backup-operator/job/backup-bao-20250115-030100");
  EXPECT_TRUE(Jobs().empty());
  clock_.Set(At("2025-01-15T03:01:30Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "resumed");
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  clock_.Set(At("2025-01-15T03:02:10Z"));  // the next slot finds the Job still running
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:BackupRunning");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["name"], "backup-bao-20250115-030100");
  FinishJob("backup-bao-20250115-030100", 0, R"({"key":"prod/ns1/bao/a.snap","size":7})");
  Reconcile("bao");
  EXPECT_EQ(BackupStatus("bao")["lastBackupName"], "prod/ns1/bao/a.snap");
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_EQ(Jobs().size(), 1u);
}

TEST_F(OperatorTest, CrashBeforeRemovingTheTriggerResumesOneManualJob) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  ASSERT_TRUE(client_
                  ->MergePatch(k8s::kOpenBaoClusters, kNs, "bao",
                               {{"metadata", {{"annotations", {{op::kAnnotationTrigger, "now"}}}}}})
                  .ok());
  clock_.Set(At("2025-01-15T03:00:40Z"));
  FailNext("PATCH", "/namespaces/ns1/openbaoclusters/bao");  // removing the annotation
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());
  EXPECT_TRUE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_TRUE(Jobs().empty());
  clock_.Set(At("2025-01-15T03:00:50Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "resumed");
  EXPECT_FALSE(Cluster("bao")["metadata"]
                   .value("annotations", json::object())
                   .contains(op::kAnnotationTrigger));
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["name"], "backup-bao-20250115-030040");  // the trigger's time
  EXPECT_EQ(jobs[0]["metadata"]["annotations"][op::kAnnotationTrigger], "true");
}

TEST_F(OperatorTest, CrashAfterTheJobEndedIsRecordedExactlyOnce) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  // 03:01 succeeds; the status write is cut off, then the restarted manager records it.
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  FinishJob("backup-bao-20250115-030100", 0,
            R"({"key":"prod/ns1/bao/one.snap","size":11,"duration":"2s"})");
  clock_.Set(At("2025-01-15T03:01:30Z"));
  FailNext("PATCH", "/namespaces/ns1/openbaoclusters/bao/status");
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());
  EXPECT_FALSE(BackupStatus("bao").contains("lastBackupName"));
  EXPECT_TRUE(Cluster("bao")["status"].contains("operationLock"));
  Reconcile("bao");
  Reconcile("bao");
  json b = BackupStatus("bao");
  EXPECT_EQ(b["lastBackupName"], "prod/ns1/bao/one.snap");
  EXPECT_EQ(b["lastBackupSize"], 11);
  EXPECT_EQ(b["consecutiveFailures"], 0);
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_EQ(EventCount("BackupSucceeded", "bao"), 1);

  // 03:02 fails; the crash falls between the status write and marking the Job.
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  FinishJob("backup-bao-20250115-030200", 6, R"({"error":"checksum mismatch","stage":"verify"})");
  FailNext("PATCH", "/namespaces/ns1/jobs/backup-bao-20250115-030200");
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());
  EXPECT_EQ(BackupStatus("bao")["consecutiveFailures"], 1);
  Reconcile("bao");
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 1) << b;
  EXPECT_EQ(b["lastFailureReason"], "verify: checksum mismatch");
  EXPECT_EQ(EventCount("BackupFailed", "bao"), 1);
  for (const json& j : Jobs()) {
    EXPECT_EQ(j["metadata"]["annotations"].value(op::kAnnotationRecorded, ""), "true")
        << j["metadata"]["name"];
  }
  EXPECT_EQ(Jobs().size(), 2u);
}

TEST_F(OperatorTest, MissingTlsCaSecretIsAConditionNotAFailingJob) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  ASSERT_TRUE(client_->Delete(k8s::kSecrets, kNs, "bao-tls-ca").ok());
  EXPECT_EQ(Reconcile("bao").outcome, "invalid");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "invalid");
  json cond = Condition("bao");
  ASSERT_TRUE(cond.is_object());
  EXPECT_EQ(cond["status"], "False");
  EXPECT_EQ(cond["reason"], "TlsCaSecretNotFound");
  EXPECT_NE(cond["message"].get<std::string>().find("\"bao-tls-ca\""), std::string::npos) << cond;
  EXPECT_TRUE(HasEvent("TlsCaSecretNotFound", "bao"));
  EXPECT_TRUE(Jobs().empty());

  CreateSecret("bao-tls-ca", {{"tls.crt", "not the CA"}});
  EXPECT_EQ(Reconcile("bao").outcome, "invalid");
  cond = Condition("bao");
  EXPECT_EQ(cond["reason"], "TlsCaSecretKeyMissing");
  EXPECT_NE(cond["message"].get<std::string>().find("\"ca.crt\""), std::string::npos) << cond;
  EXPECT_TRUE(Jobs().empty());

  ASSERT_TRUE(client_->Delete(k8s::kSecrets, kNs, "bao-tls-ca").ok());
  CreateSecret("bao-tls-ca", {{"ca.crt", "test CA"}});
  // Fixed: configured, and (seen valid for the first time) backed up from the next slot on.
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  EXPECT_EQ(Condition("bao")["status"], "True");
  clock_.Set(At("2025-01-15T03:03:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
}

TEST_F(OperatorTest, RunningBackupRenewsItsLockThrottled) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  json lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["acquiredAt"], "2025-01-15T03:01:05Z");
  EXPECT_EQ(lock["renewedAt"], "2025-01-15T03:01:05Z");
  clock_.Set(At("2025-01-15T03:01:20Z"));
  op::ReconcileResult r = Reconcile("bao");
  EXPECT_EQ(r.outcome, "running");
  EXPECT_LE(r.requeue_at, clock_.Now() + op::kLockRenewInterval);
  EXPECT_EQ(Cluster("bao")["status"]["operationLock"]["renewedAt"], "2025-01-15T03:01:05Z");
  clock_.Set(At("2025-01-15T03:01:40Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["renewedAt"], "2025-01-15T03:01:40Z");
  EXPECT_EQ(lock["acquiredAt"], "2025-01-15T03:01:05Z");
  EXPECT_EQ(lock["holder"], "bao-backup-operator/job/backup-bao-20250115-030100");
  // Once the Job ended the lock goes, and is not brought back by a renewal.
  FinishJob("backup-bao-20250115-030100", 0, R"({"key":"prod/ns1/bao/a.snap","size":7})");
  clock_.Set(At("2025-01-15T03:01:59Z"));
  Reconcile("bao");
  Reconcile("bao");
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
}

TEST_F(OperatorTest, OnlyTheLeaseHolderActs) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  CreateCluster("bao", BackupSpec());
  auto elector = [&](const std::string& id) {
    k8s::LeaderElectionConfig c;
    c.ns = kNs;
    c.name = "bao-backup-operator";
    c.identity = id;
    c.clock = &clock_;
    return std::make_unique<k8s::LeaderElector>(client_.get(), c);
  };
  auto a = elector("replica-a");
  auto b = elector("replica-b");
  ASSERT_TRUE(*a->TryAcquireOrRenew());
  ASSERT_FALSE(*b->TryAcquireOrRenew());
  // Each replica runs the controller loop body: reconcile only while leading.
  int acted_a = 0, acted_b = 0;
  auto replica = [&](k8s::LeaderElector* e, int* acted) {
    if (!e->IsLeader()) return;
    Reconcile("bao");
    ++*acted;
  };
  for (const char* t : {"2025-01-15T03:00:31Z", "2025-01-15T03:01:05Z", "2025-01-15T03:01:06Z"}) {
    clock_.Set(At(t));
    ASSERT_TRUE(*a->TryAcquireOrRenew());
    ASSERT_FALSE(*b->TryAcquireOrRenew());
    replica(a.get(), &acted_a);
    replica(b.get(), &acted_b);
  }
  EXPECT_EQ(acted_a, 3);
  EXPECT_EQ(acted_b, 0);
  EXPECT_EQ(Jobs().size(), 1u);
}

TEST_F(OperatorTest, OperatorProcessServesProbesAndReconciles) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  CreateCluster("bao", BackupSpec());
  TempDir dir;
  WriteText(dir.File("kubeconfig"),
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n"
            "  cluster:\n    server: " +
                k8s_.url() +
                "\nusers:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: t\n"
                "  context:\n    cluster: t\n    user: u\n    namespace: ns1\n");
  int port = FreePort();
  Process p;
  std::string error;
  ASSERT_TRUE(p.Start({BuildBinary("bao-backup"), "--log-format", "json", "operator",
                       "--kubeconfig", dir.File("kubeconfig"), "--metrics-bind-address",
                       "127.0.0.1:" + std::to_string(port), "--image", "bao-backup:test"},
                      {}, &error))
      << error;
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(WaitForHttp(base + "/healthz", 10s)) << p.Stderr();
  // The real clock: the cluster gets its nextScheduledBackup and its ServiceAccount.
  EXPECT_TRUE(WaitUntil([&] { return BackupStatus("bao").contains("nextScheduledBackup"); }, 15s))
      << p.Stderr();
  EXPECT_TRUE(client_->Get(k8s::kServiceAccounts, kNs, "bao-backup-serviceaccount").ok());
  RunResult metrics = testing::Run({"curl", "-s", base + "/metrics"}, {}, 10s);
  EXPECT_NE(metrics.out.find("bao_operator_reconcile_total"), std::string::npos) << metrics.out;
  EXPECT_NE(metrics.out.find("bao_operator_leader 1"), std::string::npos) << metrics.out;
  RunResult ready = testing::Run(
      {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/readyz"}, {}, 10s);
  EXPECT_EQ(ready.out, "200");
  EXPECT_EQ(p.Stop(), 0) << p.Stderr();
}

}  // namespace
}  // namespace bao::testing
