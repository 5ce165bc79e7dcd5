#include "operator/restore_logic.h"

#include <gtest/gtest.h>

#include "operator/backup_logic.h"

namespace bao::op {
namespace {

using nlohmann::json;

json Spec() {
  return {{"cluster", "bao"},
          {"source",
           {{"target",
             {{"provider", "s3"},
              {"endpoint", "https://s3.example.com"},
              {"bucket", "b"},
              {"credentialsSecretRef", {{"name", "s3-creds"}}}}},
            {"key", "prod/ns/bao/2025-01-15T03-00-00Z-01234567.snap"}}},
          {"tokenSecretRef", {{"name", "restore-token"}}},
          {"force", true}};
}

json Cluster(bool oidc = false) {
  json c = {{"apiVersion", "openbao.org/v1alpha1"},
            {"kind", "OpenBaoCluster"},
            {"metadata", {{"name", "bao"}, {"namespace", "ns"}, {"uid", "c-uid"}}},
            {"spec", {{"replicas", 3}}}};
  if (oidc) c["spec"]["selfInit"] = {{"oidc", {{"enabled", true}}}};
  return c;
}

json Restore(const std::string& name = "r1") {
  return {{"apiVersion", "openbao.org/v1alpha1"},
          {"kind", "OpenBaoRestore"},
          {"metadata", {{"name", name}, {"namespace", "ns"}, {"uid", "r-uid"}}},
          {"spec", Spec()}};
}

std::string Args(const json& job) {
  return job["spec"]["template"]["spec"]["containers"][0]["args"].dump();
}

TEST(RestoreSpecTest, ParsesAndRefusesWhatCannotWork) {
  Result<RestoreRequest> r = ParseRestoreSpec(Spec());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cluster, "bao");
  EXPECT_EQ(r->target.bucket, "b");
  EXPECT_EQ(r->token_secret, "restore-token");
  EXPECT_TRUE(r->force);
  EXPECT_FALSE(r->override_lock);

  struct Bad {
    std::function<void(json&)> change;
    const char* field;
  };
  std::vector<Bad> bad = {
      {[](json& s) { s["overrideOperationLock"] = true, s["force"] = false; },
       "spec.overrideOperationLock: only honoured together with force: true"},
      {[](json& s) { s["tokenSecretRef"]["namespace"] = "other"; },
       "spec.tokenSecretRef.namespace"},
      {[](json& s) { s["source"]["target"]["credentialsSecretRef"]["namespace"] = "x"; },
       "spec.source.target.credentialsSecretRef.namespace"},
      {[](json& s) { s["source"].erase("key"); }, "spec.source.key"},
      {[](json& s) { s.erase("cluster"); }, "spec.cluster"},
      {[](json& s) { s["source"]["target"]["endpoint"] = ""; }, "spec.source.target.endpoint"},
      {[](json& s) { s["force"] = "yes"; }, "spec.force"},
      // Credentials in the endpoint would be copied into the Jobs' arguments.
      {[](json& s) { s["source"]["target"]["endpoint"] = "https://u:pass-x1@s3.example.com"; },
       "spec.source.target.endpoint: must be scheme://host[:port][/path] without user-info"},
      {[](json& s) { s["source"]["target"]["endpoint"] = "https://h.example.com/?sig=pass-x1"; },
       "spec.source.target.endpoint: must be scheme://host[:port][/path] without a query"},
  };
  for (const Bad& b : bad) {
    json spec = Spec();
    b.change(spec);
    Result<RestoreRequest> p = ParseRestoreSpec(spec);
    ASSERT_FALSE(p.ok()) << b.field;
    EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find(b.field), std::string::npos) << p.status().message();
    EXPECT_EQ(p.status().message().find("pass-x1"), std::string::npos) << p.status().message();
  }
}

TEST(RestoreSpecTest, AuthIsTheRoleTheOidcDefaultOrTheTokenSecret) {
  RestoreRequest r = *ParseRestoreSpec(Spec());
  EXPECT_EQ(RestoreAuth(r, Cluster())->token_secret, "restore-token");
  r.jwt_auth_role = "restorer";
  EXPECT_EQ(RestoreAuth(r, Cluster())->jwt_role, "restorer");
  r.jwt_auth_role.clear();
  ExecutorAuth oidc = *RestoreAuth(r, Cluster(true));
  EXPECT_EQ(oidc.jwt_role, kOidcRestoreRole);
  EXPECT_TRUE(oidc.token_secret.empty());
  r.token_secret.clear();
  Result<ExecutorAuth> none = RestoreAuth(r, Cluster());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("spec.jwtAuthRole"), std::string::npos);
}

TEST(RestoreJobTest, NamesStayDnsLabelsAndDistinct) {
  EXPECT_EQ(RestoreVerifyJobName("r1"), "restore-verify-r1");
  EXPECT_EQ(RestoreJobName("r1", 2), "restore-r1-2");
  const std::string a(100, 'a'), b = std::string(99, 'a') + "b";
  EXPECT_LE(RestoreVerifyJobName(a).size(), 63u);
  EXPECT_LE(RestoreJobName(a, 3).size(), 63u);
  EXPECT_NE(RestoreJobName(a, 1), RestoreJobName(b, 1));
  EXPECT_NE(RestoreJobName(a, 1), RestoreJobName(a, 2));
}

TEST(RestoreJobTest, VerifyJobReadsStorageOnlyAndRestoreJobHasTheBackupJobsShape) {
  RestoreRequest r = *ParseRestoreSpec(Spec());
  json verify = BuildRestoreVerifyJob(Restore(), Cluster(), r, {});
  const json& vpod = verify["spec"]["template"]["spec"];
  EXPECT_EQ(vpod["serviceAccountName"], "bao-restore-serviceaccount");
  std::string vargs = Args(verify);
  EXPECT_NE(vargs.find(R"("verify","--key","prod/ns/bao/2025-01-15T03-00-00Z-01234567.snap")"),
            std::string::npos)
      << vargs;
  EXPECT_EQ(vargs.find("--bao-addr"), std::string::npos)
      << "the verification never talks to OpenBao";
  EXPECT_EQ(vpod["volumes"].dump().find("tls-ca"), std::string::npos);
  EXPECT_NE(vpod["volumes"].dump().find("s3-creds"), std::string::npos);
  EXPECT_EQ(verify["metadata"]["ownerReferences"][0]["kind"], "OpenBaoRestore");
  EXPECT_EQ(verify["metadata"]["annotations"][kAnnotationRestore], "r1");
  EXPECT_EQ(verify["metadata"]["labels"][kLabelComponent], kComponentRestoreVerify);

  json job = BuildRestoreJob(Restore(), Cluster(), r, *RestoreAuth(r, Cluster()), 2, {});
  EXPECT_EQ(job["metadata"]["name"], "restore-r1-2");
  const json& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
  std::string args = Args(job);
  EXPECT_NE(args.find(R"("restore","--key")"), std::string::npos) << args;
  EXPECT_NE(args.find(R"("https://bao-2.bao.ns.svc:8200")"), std::string::npos) << args;
  EXPECT_NE(args.find(R"("--bao-token-file","/etc/bao/backup/token/token")"), std::string::npos);
  EXPECT_NE(args.find(R"("--force","--yes","--result-file","/dev/termination-log")"),
            std::string::npos)
      << args;
  EXPECT_NE(pod["volumes"].dump().find("bao-tls-ca"), std::string::npos);
  EXPECT_EQ(job["spec"]["backoffLimit"], 0);
}

TEST(RestoreVerdictTest, SuccessSealedRetryOnlyWhileOpenBaoIsUnchanged) {
  json ok = {{"restored", "k.snap"}, {"size", 4096}, {"duration", "3s"}, {"sealed", true}};
  RestoreVerdict v = JudgeRestoreJob(true, ok, 1, "");
  EXPECT_EQ(v.kind, RestoreVerdict::Kind::kSucceeded);
  EXPECT_EQ(v.size, 4096);
  EXPECT_TRUE(v.sealed);
  EXPECT_NE(v.message.find("unseal"), std::string::npos);

  json leader = {{"error", "no active node"},
                 {"stage", "leader"},
                 {"exitCode", 3},
                 {"openbaoUnchanged", true}};
  EXPECT_EQ(JudgeRestoreJob(false, leader, 1, "").kind, RestoreVerdict::Kind::kRetry);
  EXPECT_EQ(JudgeRestoreJob(false, leader, kMaxRestoreAttempts, "").kind,
            RestoreVerdict::Kind::kFailed);
  json storage = {
      {"error", "reset"}, {"stage", "storage"}, {"exitCode", 5}, {"openbaoUnchanged", true}};
  EXPECT_EQ(JudgeRestoreJob(false, storage, 2, "").kind, RestoreVerdict::Kind::kRetry);
  // After OpenBao accepted (or may have): never again.
  json accepted = {{"error", "reached a standby"},
                   {"stage", "leader"},
                   {"exitCode", 3},
                   {"openbaoUnchanged", false}};
  EXPECT_EQ(JudgeRestoreJob(false, accepted, 1, "").kind, RestoreVerdict::Kind::kFailed);
  json transfer = {{"error", "connection reset"},
                   {"stage", "snapshot"},
                   {"exitCode", 4},
                   {"openbaoUnchanged", false}};
  EXPECT_EQ(JudgeRestoreJob(false, transfer, 1, "").kind, RestoreVerdict::Kind::kFailed);
  // Refused for good: retrying cannot help.
  json auth = {{"error", "permission denied"},
               {"stage", "auth"},
               {"exitCode", 2},
               {"openbaoUnchanged", true}};
  RestoreVerdict refused = JudgeRestoreJob(false, auth, 1, "");
  EXPECT_EQ(refused.kind, RestoreVerdict::Kind::kFailed);
  EXPECT_EQ(refused.message, "auth: permission denied");
  // No result (the Pod was killed): unknown, so no retry.
  RestoreVerdict lost = JudgeRestoreJob(false, nullptr, 1, "Job failed: DeadlineExceeded");
  EXPECT_EQ(lost.kind, RestoreVerdict::Kind::kFailed);
  EXPECT_NE(lost.message.find("not known"), std::string::npos);
}

TEST(RestoreResultTest, NewestTerminatedContainerWins) {
  auto pod = [](const std::string& message, const char* finished) {
    return json{
        {"status",
         {{"containerStatuses",
           json::array(
               {{{"state",
                  {{"terminated", {{"message", message}, {"finishedAt", finished}}}}}}})}}}};
  };
  std::string at;
  json r = NewestResult({pod(R"({"restored":"old"})", "2025-01-15T03:00:00Z"),
                         pod("log line\n{\"restored\":\"new\"}", "2025-01-15T04:00:00Z")},
                        &at);
  EXPECT_EQ(r["restored"], "new");
  EXPECT_EQ(at, "2025-01-15T04:00:00Z");
  EXPECT_TRUE(NewestResult({pod("not json", "2025-01-15T04:00:00Z")}, nullptr).is_null());
}

}  // namespace
}  // namespace bao::op
