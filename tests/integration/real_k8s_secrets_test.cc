// No secret leaves the operator: against a real kube-apiserver v1.33 + etcd with the chart
// installed, the `bao-backup operator` process (as the chart's ServiceAccount, debug log, text
// and json) runs backups and restores whose Secrets hold recognisable values: the OpenBao
// token, the restore token and the S3 secret access key. The test plays the kubelet (runs each
// Job's executor here, operator_fixture.h), with succeeding and failing Jobs (wrong token,
// wrong S3 secret). None of the values may appear in any Event, in the OpenBaoCluster or
// OpenBaoRestore (status included), in any Job or Pod (arguments and environment reference
// Secrets by name), in the executor's output or termination message, or in the operator's
// log. The commands themselves are covered by secrets_test.cc. Label real-k8s.
#include "operator/restore_logic.h"
#include "operator_fixture.h"
#include "secret_check.h"

namespace bao::testing {
namespace {

constexpr const char* kOpBaoToken = "s.S3CR3T-operator-backup-token-3a7c1e9f5b2d8046";
constexpr const char* kOpWrongBaoToken = "s.S3CR3T-operator-wrong-token-6e0a4c8b2f1d9357";
constexpr const char* kOpRestoreToken = "s.S3CR3T-operator-restore-token-9d3f7b1a5c0e2864";
constexpr const char* kOpWrongRestoreToken = "s.S3CR3T-operator-wrong-restore-7b5d9f3a1e0c4286";
constexpr const char* kOpS3AccessKey = "baoopsroot";
constexpr const char* kOpS3SecretKey = "S3CR3T-operator-s3-secret-key-1f5b9d3e7a0c2468";
constexpr const char* kOpWrongS3SecretKey = "S3CR3T-operator-wrong-s3-key-8c2e6a0f4b9d1357";
constexpr const char* kOpUrlPassword = "S3CR3T-operator-url-password-4e8a2c6f0d1b3957";

class OperatorSecrets : public OperatorFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  OperatorSecrets() : OperatorFixture(true) {}

  void SetUp() override {
    OperatorFixture::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    for (const auto& [name, value] : std::vector<std::pair<const char*, const char*>>{
             {"OpenBao backup token", kOpBaoToken},
             {"wrong OpenBao backup token", kOpWrongBaoToken},
             {"OpenBao restore token", kOpRestoreToken},
             {"wrong OpenBao restore token", kOpWrongRestoreToken},
             {"S3 secret access key", kOpS3SecretKey},
             {"wrong S3 secret access key", kOpWrongS3SecretKey},
             {"password in an endpoint's user-info", kOpUrlPassword}}) {
      secrets_.Add(name, value);
    }
    secrets_.Add("the operator's ServiceAccount token", op_token_);
  }

  void PatchSecret(const std::string& name, const std::string& key, const std::string& value) {
    Result<json> r = client_->MergePatch(k8s::kSecrets, kNs, name,
                                         {{"data", {{key, crypto::Base64Encode(value)}}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // Sets the trigger annotation. Job names carry the time of the reconcile that makes them, to
  // the second, and a trigger in the second of the previous Job would name the Job that already
  // exists (the operator then takes it for this trigger's): it waits (polling) for the next
  // second after the last Job was seen.
  void Trigger() {
    ASSERT_TRUE(WaitUntil(
        [&] {
          return std::chrono::floor<std::chrono::seconds>(SystemClock().Now()) >
                 std::chrono::floor<std::chrono::seconds>(last_job_seen_);
        },
        5s));
    Result<json> r =
        client_->MergePatch(k8s::kOpenBaoClusters, kNs, "bao",
                            {{"metadata", {{"annotations", {{op::kAnnotationTrigger, "now"}}}}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // The Job `name` once the operator made it (null after 30 s).
  json WaitForJob(const std::string& name) {
    json found;
    WaitUntil(
        [&] {
          Result<json> j = client_->Get(k8s::kJobs, kNs, name);
          if (j.ok()) found = *j;
          return j.ok();
        },
        30s);
    return found;
  }

  // The operator's next backup Job: one not in `known` (null after 30 s).
  json WaitForNewBackupJob(std::set<std::string>* known) {
    json found;
    WaitUntil(
        [&] {
          for (const json& j : Jobs()) {
            const std::string name = j["metadata"]["name"];
            if (name.starts_with("backup-") && !known->contains(name)) {
              found = j;
              known->insert(name);
              last_job_seen_ = SystemClock().Now();
              return true;
            }
          }
          return false;
        },
        30s);
    return found;
  }

  // Plays the kubelet for `job`: runs its executor here, checks its output and termination
  // message for secrets, and finishes the Job. Returns the exit code.
  int Run(const json& job) {
    EXPECT_TRUE(job.is_object()) << "no Job";
    if (!job.is_object()) return -1;
    const std::string name = job["metadata"]["name"];
    Result<LocalRun> r =
        RunJobLocally(*client_, job, bao_->NodeUrls(), BuildBinary("bao-backup"), 180s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return -1;
    EXPECT_TRUE(secrets_.NoneIn("Job " + name + " executor stdout", r->run.out));
    EXPECT_TRUE(secrets_.NoneIn("Job " + name + " executor stderr", r->run.err));
    EXPECT_FALSE(r->message.empty()) << name << ": no termination message\n" << r->run.err;
    EXPECT_TRUE(secrets_.NoneIn("Job " + name + " termination message", r->message));
    TimePoint now = SystemClock().Now();
    Status s = testing::FinishJob(*client_, job, r->run.exit_code == 0, r->message, now, now);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r->run.exit_code;
  }

  // Every Job's spec must reference the Secrets by name, never carry their values.
  void ExpectJobReferencesSecrets(const json& job, const std::vector<std::string>& secrets) {
    ASSERT_TRUE(job.is_object()) << "no Job";
    const std::string name = job["metadata"]["name"];
    EXPECT_TRUE(secrets_.NoneIn("Job " + name, job.dump()));
    const json& pod = job["spec"]["template"]["spec"];
    std::set<std::string> mounted;
    for (const json& v : pod.value("volumes", json::array())) {
      if (v.contains("secret")) mounted.insert(v["secret"].value("secretName", ""));
    }
    for (const std::string& s : secrets) {
      EXPECT_TRUE(mounted.contains(s))
          << name << " does not mount Secret " << s << ": " << pod["volumes"];
    }
    for (const json& e : pod["containers"][0].value("env", json::array())) {
      EXPECT_TRUE(secrets_.NoneIn("Job " + name + " env " + e.value("name", ""), e.dump()));
    }
  }

  json Restore(const std::string& name) {
    Result<json> r = client_->Get(k8s::kOpenBaoRestores, kNs, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json::object();
  }
  std::vector<json> RestoreJobsOf(const std::string& name) {
    std::vector<json> out;
    for (const json& j : Jobs()) {
      if (j["metadata"].value("annotations", json::object()).value(op::kAnnotationRestore, "") ==
          name) {
        out.push_back(j);
      }
    }
    return out;
  }
  std::string RestorePhase(const std::string& name) {
    return Restore(name).value("status", json::object()).value("phase", "");
  }

  // Drives OpenBaoRestore `name` to its end: runs the verification Job and each restore
  // attempt's Job as the operator makes them. Returns the final phase.
  std::string RunRestore(const std::string& name) {
    EXPECT_EQ(Run(WaitForJob(op::RestoreVerifyJobName(name))), 0) << name;
    for (int attempt = 1; attempt <= op::kMaxRestoreAttempts; ++attempt) {
      json job = WaitForJob(op::RestoreJobName(name, attempt));
      if (!job.is_object()) break;
      ExpectJobReferencesSecrets(job, {});
      Run(job);
      std::string phase;
      WaitUntil(
          [&] {
            phase = RestorePhase(name);
            json st = Restore(name).value("status", json::object());
            return phase == op::kPhaseCompleted || phase == op::kPhaseFailed ||
                   st.value("attempts", 1) > attempt;
          },
          30s);
      if (phase == op::kPhaseCompleted || phase == op::kPhaseFailed) return phase;
    }
    return RestorePhase(name);
  }

  SecretList secrets_;
  TimePoint last_job_seen_{};
};

TEST_P(OperatorSecrets, NoSecretInEventsStatusJobsOrTheOperatorLog) {
  const std::string format = GetParam();
  // The backends, the Secrets with recognisable values.
  minio_.SetRootCredentials(kOpS3AccessKey, kOpS3SecretKey);
  std::string error;
  ASSERT_TRUE(minio_.Start(&error)) << error;
  ASSERT_TRUE(minio_.CreateBucket("backups", &error)) << error;
  BaoTestServerOptions o;
  o.tls = true;
  o.admin_token = kOpRestoreToken;
  bao_ = std::make_unique<BaoTestServer>(o);
  Status started = bao_->Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(bao_->AddToken(kOpBaoToken, {{"sys/storage/raft/snapshot", {"read"}}}).ok());
  CreateSecret("s3-creds", {{"accessKeyId", kOpS3AccessKey}, {"secretAccessKey", kOpS3SecretKey}});
  CreateSecret("bao-token", {{"token", kOpBaoToken}});
  CreateSecret("restore-token", {{"token", kOpRestoreToken}});
  CreateSecret("wrong-restore-token", {{"token", kOpWrongRestoreToken}});

  // The operator process, as the chart's ServiceAccount.
  TempDir dir;
  WriteText(dir.File("kubeconfig"), OperatorKubeconfig());
  const int port = FreePort();
  Process op;
  ASSERT_TRUE(op.Start(
      {BuildBinary("bao-backup"), "--log-format", format, "--log-level", "debug", "operator",
       "--kubeconfig", dir.File("kubeconfig"), "--lease-namespace", "bao-backup-system",
       "--metrics-bind-address", "127.0.0.1:" + std::to_string(port), "--image", "bao-backup:test"},
      {}, &error))
      << error;
  ASSERT_TRUE(WaitForHttp("http://127.0.0.1:" + std::to_string(port) + "/healthz", 20s))
      << op.Stderr();
  json spec = BackupSpec();
  spec["schedule"] = "@yearly";  // only the triggered backups below run
  // The CA Secret first: the operator looks at the cluster as soon as it exists.
  CreateSecret("bao-tls-ca", {{"ca.crt", ReadText(bao_->ca_file())}});
  Result<json> created = TryCreateCluster("bao", spec, {});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  SetStatus("bao", {{"phase", "Running"}, {"currentVersion", "2.1.0"}});
  ASSERT_TRUE(WaitUntil(
      [&] {
        json c = Condition("bao");
        return c.is_object() && c["status"] == "True";
      },
      30s))
      << Condition("bao") << op.Stderr();

  // A backup that succeeds.
  std::set<std::string> known;
  Trigger();
  json job = WaitForNewBackupJob(&known);
  ASSERT_TRUE(job.is_object()) << op.Stderr();
  ExpectJobReferencesSecrets(job, {"s3-creds", "bao-token"});
  ASSERT_EQ(Run(job), 0);
  ASSERT_TRUE(
      WaitUntil([&] { return !BackupStatus("bao").value("lastBackupName", "").empty(); }, 30s))
      << BackupStatus("bao") << op.Stderr();
  const std::string key = BackupStatus("bao")["lastBackupName"];

  // Failing backups: a wrong OpenBao token, then a wrong S3 secret.
  PatchSecret("bao-token", "token", kOpWrongBaoToken);
  ASSERT_TRUE(WaitUntil([&] { return !Cluster("bao")["status"].contains("operationLock"); }, 30s));
  Trigger();
  job = WaitForNewBackupJob(&known);
  ASSERT_TRUE(job.is_object()) << BackupStatus("bao") << op.Stderr();
  ExpectJobReferencesSecrets(job, {"s3-creds", "bao-token"});
  EXPECT_EQ(Run(job), 2);
  ASSERT_TRUE(
      WaitUntil([&] { return BackupStatus("bao").value("consecutiveFailures", 0) == 1; }, 30s))
      << BackupStatus("bao") << op.Stderr();
  PatchSecret("bao-token", "token", kOpBaoToken);
  PatchSecret("s3-creds", "secretAccessKey", kOpWrongS3SecretKey);
  ASSERT_TRUE(WaitUntil([&] { return !Cluster("bao")["status"].contains("operationLock"); }, 30s));
  Trigger();
  job = WaitForNewBackupJob(&known);
  ASSERT_TRUE(job.is_object()) << BackupStatus("bao") << op.Stderr();
  ExpectJobReferencesSecrets(job, {"s3-creds", "bao-token"});
  EXPECT_EQ(Run(job), 5);
  ASSERT_TRUE(
      WaitUntil([&] { return BackupStatus("bao").value("consecutiveFailures", 0) == 2; }, 30s))
      << BackupStatus("bao") << op.Stderr();
  PatchSecret("s3-creds", "secretAccessKey", kOpS3SecretKey);
  ASSERT_TRUE(WaitUntil([&] { return !Cluster("bao")["status"].contains("operationLock"); }, 30s));

  // A restore that succeeds, and one whose token OpenBao refuses.
  auto restore = [&](const std::string& name, const std::string& token_secret) {
    Result<json> r = client_->Create(k8s::kOpenBaoRestores, kNs,
                                     {{"apiVersion", "openbao.org/v1alpha1"},
                                      {"kind", "OpenBaoRestore"},
                                      {"metadata", {{"name", name}, {"namespace", kNs}}},
                                      {"spec",
                                       {{"cluster", "bao"},
                                        {"source", {{"target", spec["target"]}, {"key", key}}},
                                        {"tokenSecretRef", {{"name", token_secret}}},
                                        {"force", true}}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  restore("good", "restore-token");
  EXPECT_EQ(RunRestore("good"), op::kPhaseCompleted) << Restore("good") << op.Stderr();
  ASSERT_TRUE(WaitUntil([&] { return !Cluster("bao")["status"].contains("operationLock"); }, 30s));
  restore("refused", "wrong-restore-token");
  EXPECT_EQ(RunRestore("refused"), op::kPhaseFailed) << Restore("refused") << op.Stderr();
  EXPECT_TRUE(HasEvent("BackupSucceeded", "bao"));
  EXPECT_TRUE(HasEvent("BackupFailed", "bao"));

  // A password in the endpoint's user-info, in a cluster's and in a restore's target: refused
  // with a condition or a failed restore that names the field; no Job carries it.
  json with_password = spec;
  const std::string endpoint = spec["target"]["endpoint"];
  with_password["target"]["endpoint"] =
      "http://backup-user:" + std::string(kOpUrlPassword) + "@" + endpoint.substr(7);
  CreateSecret("userinfo-tls-ca", {{"ca.crt", ReadText(bao_->ca_file())}});
  created = TryCreateCluster("userinfo", with_password, {}, {{op::kAnnotationTrigger, "now"}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  SetStatus("userinfo", {{"phase", "Running"}, {"currentVersion", "2.1.0"}});
  auto userinfo_jobs = [&] {
    int n = 0;
    for (const json& j : Jobs()) {
      n += j["metadata"].value("annotations", json::object()).value(op::kAnnotationCluster, "") ==
           "userinfo";
    }
    return n;
  };
  EXPECT_TRUE(WaitUntil(
      [&] {
        json c = ConditionOf("userinfo", op::kConditionBackupConfigured);
        return userinfo_jobs() > 0 || (c.is_object() && c["status"] == "False");
      },
      30s))
      << Cluster("userinfo") << op.Stderr();
  EXPECT_EQ(userinfo_jobs(), 0);
  json cond = ConditionOf("userinfo", op::kConditionBackupConfigured);
  EXPECT_NE(cond.value("message", "").find("spec.backup.target.endpoint"), std::string::npos)
      << cond;
  Result<json> r =
      client_->Create(k8s::kOpenBaoRestores, kNs,
                      {{"apiVersion", "openbao.org/v1alpha1"},
                       {"kind", "OpenBaoRestore"},
                       {"metadata", {{"name", "userinfo"}, {"namespace", kNs}}},
                       {"spec",
                        {{"cluster", "bao"},
                         {"source", {{"target", with_password["target"]}, {"key", key}}},
                         {"tokenSecretRef", {{"name", "restore-token"}}},
                         {"force", true}}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(WaitUntil([&] { return RestorePhase("userinfo") == op::kPhaseFailed; }, 30s))
      << Restore("userinfo") << op.Stderr();
  EXPECT_NE(Restore("userinfo")["status"].value("message", "").find("spec.source.target.endpoint"),
            std::string::npos)
      << Restore("userinfo");
  EXPECT_TRUE(RestoreJobsOf("userinfo").empty());

  EXPECT_EQ(op.Stop(), 0) << op.Stderr();
  const std::string where = " [operator " + format + " log]";
  EXPECT_TRUE(secrets_.NoneIn("operator stderr" + where, op.Stderr()));
  EXPECT_TRUE(secrets_.NoneIn("operator stdout" + where, op.Stdout()));
  EXPECT_NE(op.Stderr().find("backup failed"), std::string::npos) << op.Stderr();
  // Everything the operator wrote (and what the kubelet stand-in wrote from the Jobs' results).
  // The OpenBaoCluster and OpenBaoRestore "userinfo" hold the password in their spec (where the
  // user put it); nothing else may.
  Result<k8s::ObjectList> clusters = client_->List(k8s::kOpenBaoClusters, kNs);
  ASSERT_TRUE(clusters.ok());
  for (json c : clusters->items) {
    const std::string name = c["metadata"]["name"];
    if (name == "userinfo") c.erase("spec");
    EXPECT_TRUE(secrets_.NoneIn("OpenBaoCluster " + name + where, c.dump()));
  }
  for (const char* name : {"good", "refused", "userinfo"}) {
    json restore = Restore(name);
    if (std::string(name) == "userinfo") restore.erase("spec");
    EXPECT_TRUE(secrets_.NoneIn(std::string("OpenBaoRestore ") + name + where, restore.dump()));
  }
  for (const k8s::Resource* resource :
       {&k8s::kEvents, &k8s::kJobs, &k8s::kPods, &k8s::kServiceAccounts}) {
    Result<k8s::ObjectList> list = client_->List(*resource, kNs);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    EXPECT_FALSE(list->items.empty()) << resource->plural;
    for (const json& item : list->items) {
      EXPECT_TRUE(secrets_.NoneIn(
          resource->plural + " " + item["metadata"].value("name", "") + where, item.dump()));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(LogFormats, OperatorSecrets, ::testing::Values("text", "json"));

}  // namespace
}  // namespace bao::testing
