#include "operator/job_builder.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "backup/spec.h"
#include "crypto/crypto.h"

namespace bao::op {
namespace {

using nlohmann::json;

TimePoint At(const char* rfc3339) {
  return *ParseRfc3339(rfc3339);
}

json Cluster(const std::string& name = "bao") {
  return {{"apiVersion", "openbao.org/v1alpha1"},
          {"kind", "OpenBaoCluster"},
          {"metadata", {{"name", name}, {"namespace", "prod"}, {"uid", "uid-1"}}},
          {"spec", {{"replicas", 2}}}};
}

backup::BackupSpec Spec(json backup) {
  Result<backup::BackupSpec> s = backup::ParseBackupSpec(backup, "spec.backup", true, true);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : backup::BackupSpec{};
}

json TokenBackup() {
  return {{"schedule", "0 3 * * *"},
          {"target",
           {{"provider", "s3"},
            {"endpoint", "https://s3.example.com"},
            {"bucket", "b"},
            {"pathPrefix", "p"},
            {"usePathStyle", true},
            {"credentialsSecretRef", {{"name", "s3-creds"}}}}},
          {"tokenSecretRef", {{"name", "bao-token"}}},
          {"retention", {{"maxCount", 3}, {"maxAge", "168h"}}}};
}

// The argument following `flag` in `args`, or "" (absent or last).
std::string ArgAfter(const json& args, const std::string& flag) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) return args[i + 1];
  }
  return "";
}

bool HasArg(const json& args, const std::string& flag) {
  for (const json& a : args) {
    if (a == flag) return true;
  }
  return false;
}

json Find(const json& list, const std::string& name) {
  for (const json& x : list) {
    if (x.value("name", "") == name) return x;
  }
  return nullptr;
}

TEST(JobBuilderTest, NameDerivesFromTheSlotAndStaysADnsLabel) {
  EXPECT_EQ(BackupJobName("bao", At("2025-01-15T03:00:00Z")), "backup-bao-20250115-030000");
  EXPECT_EQ(BackupJobName("bao", At("2025-01-15T03:00:00Z")),
            BackupJobName("bao", At("2025-01-15T03:00:00Z")));
  EXPECT_NE(BackupJobName("bao", At("2025-01-15T03:00:00Z")),
            BackupJobName("bao", At("2025-01-15T03:01:00Z")));
  std::string a(60, 'a'), b = std::string(59, 'a') + "b";
  std::string na = BackupJobName(a, At("2025-01-15T03:00:00Z"));
  std::string nb = BackupJobName(b, At("2025-01-15T03:00:00Z"));
  EXPECT_LE(na.size(), 63u);
  EXPECT_LE(nb.size(), 63u);
  EXPECT_NE(na, nb);  // shortened with a hash, still distinct
  EXPECT_TRUE(na.ends_with("-20250115-030000")) << na;
  EXPECT_EQ(BackupServiceAccountName("bao"), "bao-backup-serviceaccount");
  EXPECT_EQ(TlsCaSecretName("bao"), "bao-tls-ca");
}

// One name per target version (and attempt): a repeated reconcile, or one after a restart,
// names the same Job; long cluster names and versions stay within a DNS label.
TEST(JobBuilderTest, PreUpgradeJobNameDerivesFromTheTargetVersion) {
  const std::string hash = "-pre-" + crypto::Sha256Hex("2.2.0").substr(0, 8);
  EXPECT_EQ(PreUpgradeJobName("bao", "2.2.0"), "backup-bao" + hash);
  EXPECT_EQ(PreUpgradeJobName("bao", "2.2.0", 1), PreUpgradeJobName("bao", "2.2.0"));
  EXPECT_EQ(PreUpgradeJobName("bao", "2.2.0", 2), "backup-bao" + hash + "-2");
  EXPECT_NE(PreUpgradeJobName("bao", "2.2.0"), PreUpgradeJobName("bao", "2.2.1"));
  EXPECT_NE(PreUpgradeJobName("bao", "2.2.0"), PreUpgradeJobName("bao2", "2.2.0"));
  EXPECT_NE(PreUpgradeJobName("bao", "2.2.0"), BackupJobName("bao", At("2025-01-15T03:00:00Z")));
  const std::string version = "2.2.0-beta.1+build." + std::string(100, '7');  // not label-safe
  for (const std::string& cluster :
       {std::string(36, 'a'), std::string(37, 'a'), std::string(231, 'z')}) {
    for (int64_t attempt : {int64_t{1}, int64_t{99999}, int64_t{1000000}}) {
      std::string n = PreUpgradeJobName(cluster, version, attempt);
      EXPECT_LE(n.size(), 63u) << n;
      EXPECT_TRUE(std::all_of(n.begin(), n.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
      })) << n;
      EXPECT_NE(n.back(), '-') << n;
    }
  }
  EXPECT_NE(PreUpgradeJobName(std::string(60, 'a'), "2.2.0"),
            PreUpgradeJobName(std::string(59, 'a') + "b", "2.2.0"));
}

TEST(JobBuilderTest, PreUpgradeJobIsTheBackupJobWithAPrefixAndTheVersion) {
  JobSettings settings;
  settings.default_image = "ghcr.io/x/bao-backup:1";
  const backup::BackupSpec spec = Spec(TokenBackup());
  json job = BuildPreUpgradeBackupJob(Cluster(), spec, "", "2.2.0", 1, At("2025-01-15T03:00:07Z"),
                                      false, settings);
  json scheduled = BuildBackupJob(Cluster(), spec, "", At("2025-01-15T03:00:07Z"), false, settings);
  EXPECT_EQ(job["metadata"]["name"], PreUpgradeJobName("bao", "2.2.0"));
  EXPECT_EQ(job["metadata"]["annotations"][kAnnotationPreUpgradeVersion], "2.2.0");
  EXPECT_EQ(job["metadata"]["annotations"][kAnnotationSlot], "2025-01-15T03:00:07Z");
  EXPECT_EQ(job["metadata"]["annotations"][kAnnotationCluster], "bao");
  EXPECT_FALSE(scheduled["metadata"]["annotations"].contains(kAnnotationPreUpgradeVersion));
  // Found by the same selector as every backup Job.
  EXPECT_EQ(job["metadata"]["labels"], scheduled["metadata"]["labels"]);
  const json& args = job["spec"]["template"]["spec"]["containers"][0]["args"];
  EXPECT_EQ(ArgAfter(args, "--file-prefix"), "pre-upgrade-");
  EXPECT_FALSE(
      HasArg(scheduled["spec"]["template"]["spec"]["containers"][0]["args"], "--file-prefix"));
  // Otherwise the same Job: arguments (retention included), mounts, security.
  json without = args;
  for (size_t i = 0; i + 1 < without.size(); ++i) {
    if (without[i] == "--file-prefix") {
      without.erase(without.begin() + static_cast<std::ptrdiff_t>(i),
                    without.begin() + static_cast<std::ptrdiff_t>(i + 2));
      break;
    }
  }
  EXPECT_EQ(without, scheduled["spec"]["template"]["spec"]["containers"][0]["args"]);
  EXPECT_EQ(ArgAfter(args, "--max-count"), "3");
  json a = job["spec"], b = scheduled["spec"];
  a["template"]["spec"]["containers"][0].erase("args");
  b["template"]["spec"]["containers"][0].erase("args");
  EXPECT_EQ(a, b);
  // A retry is another Job.
  EXPECT_EQ(BuildPreUpgradeBackupJob(Cluster(), spec, "", "2.2.0", 2, At("2025-01-15T04:00:00Z"),
                                     true, settings)["metadata"]["name"],
            PreUpgradeJobName("bao", "2.2.0", 2));
}

TEST(JobBuilderTest, TokenJobHasTheContractShape) {
  JobSettings settings;
  settings.default_image = "ghcr.io/x/bao-backup:1";
  json job = BuildBackupJob(Cluster(), Spec(TokenBackup()), "", At("2025-01-15T03:00:00Z"), false,
                            settings);
  EXPECT_EQ(job["metadata"]["name"], "backup-bao-20250115-030000");
  EXPECT_EQ(job["metadata"]["namespace"], "prod");
  EXPECT_EQ(job["metadata"]["labels"][kLabelCluster], "bao");
  EXPECT_EQ(job["metadata"]["labels"][kLabelComponent], "backup");
  EXPECT_EQ(job["metadata"]["labels"][kLabelManagedBy], "bao-backup-operator");
  EXPECT_EQ(job["metadata"]["annotations"][kAnnotationSlot], "2025-01-15T03:00:00Z");
  EXPECT_EQ(job["metadata"]["annotations"][kAnnotationTrigger], "false");
  const json& owner = job["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "OpenBaoCluster");
  EXPECT_EQ(owner["uid"], "uid-1");
  EXPECT_EQ(owner["controller"], true);

  EXPECT_EQ(job["spec"]["backoffLimit"], 0);
  EXPECT_EQ(job["spec"]["activeDeadlineSeconds"], 3600);
  EXPECT_EQ(job["spec"]["ttlSecondsAfterFinished"], 86400);
  const json& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(job["spec"]["template"]["metadata"]["labels"][kLabelCluster], "bao");
  EXPECT_EQ(pod["serviceAccountName"], "bao-backup-serviceaccount");
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["restartPolicy"], "Never");
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");

  ASSERT_EQ(pod["containers"].size(), 1u);
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "ghcr.io/x/bao-backup:1");
  EXPECT_EQ(c["terminationMessagePath"], "/dev/termination-log");
  const json& sc = c["securityContext"];
  EXPECT_EQ(sc["runAsNonRoot"], true);
  EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
  EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
  EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(sc["seccompProfile"]["type"], "RuntimeDefault");

  // Mounts: the CA, the token Secret, the credentials Secret; no projected token.
  const json& mounts = c["volumeMounts"];
  const json& volumes = pod["volumes"];
  EXPECT_EQ(Find(mounts, "tls-ca")["mountPath"], "/etc/bao/tls");
  EXPECT_EQ(Find(volumes, "tls-ca")["secret"]["secretName"], "bao-tls-ca");
  EXPECT_EQ(Find(mounts, "bao-token")["mountPath"], "/etc/bao/backup/token");
  EXPECT_EQ(Find(volumes, "bao-token")["secret"]["secretName"], "bao-token");
  EXPECT_EQ(Find(mounts, "storage-credentials")["mountPath"], "/etc/bao/backup/credentials");
  EXPECT_EQ(Find(volumes, "storage-credentials")["secret"]["secretName"], "s3-creds");
  EXPECT_TRUE(Find(volumes, "openbao-token").is_null());
  for (const json& m : mounts) {
    if (m["name"] != "tmp") {
      EXPECT_EQ(m.value("readOnly", false), true) << m;
    }
  }

  // Flags from the spec.
  const json& args = c["args"];
  EXPECT_EQ(args[0], "--log-format");
  EXPECT_EQ(args[2], "backup");
  std::string joined = args.dump();
  EXPECT_NE(joined.find("\"--bao-addr\",\"https://bao-0.bao.prod.svc:8200\""), std::string::npos);
  EXPECT_NE(joined.find("\"--bao-addr\",\"https://bao-1.bao.prod.svc:8200\""), std::string::npos);
  EXPECT_EQ(joined.find("bao-2."), std::string::npos);  // replicas: 2
  EXPECT_EQ(ArgAfter(args, "--bao-cacert"), "/etc/bao/tls/ca.crt");
  EXPECT_EQ(ArgAfter(args, "--bao-token-file"), "/etc/bao/backup/token/token");
  EXPECT_FALSE(HasArg(args, "--jwt-role"));
  EXPECT_EQ(ArgAfter(args, "--provider"), "s3");
  EXPECT_EQ(ArgAfter(args, "--endpoint"), "https://s3.example.com");
  EXPECT_EQ(ArgAfter(args, "--bucket"), "b");
  EXPECT_EQ(ArgAfter(args, "--path-prefix"), "p");
  EXPECT_TRUE(HasArg(args, "--use-path-style"));
  EXPECT_FALSE(HasArg(args, "--insecure-skip-verify"));
  EXPECT_EQ(ArgAfter(args, "--credentials-dir"), "/etc/bao/backup/credentials");
  EXPECT_EQ(ArgAfter(args, "--part-size"), "10485760");
  EXPECT_EQ(ArgAfter(args, "--concurrency"), "3");
  EXPECT_EQ(ArgAfter(args, "--namespace"), "prod");
  EXPECT_EQ(ArgAfter(args, "--cluster"), "bao");
  EXPECT_EQ(ArgAfter(args, "--max-count"), "3");
  EXPECT_FALSE(ArgAfter(args, "--max-age").empty());
  EXPECT_EQ(ArgAfter(args, "--result-file"), "/dev/termination-log");
}

TEST(JobBuilderTest, JwtJobUsesAProjectedTokenWithTheConfiguredAudience) {
  json backup = TokenBackup();
  backup.erase("tokenSecretRef");
  backup["jwtAuthRole"] = "backup-role";
  backup["image"] = "own/image:2";
  backup["target"].erase("credentialsSecretRef");
  JobSettings settings;
  settings.default_image = "default:1";
  json job = BuildBackupJob(Cluster(), Spec(backup), "backup-role", At("2025-01-15T03:00:00Z"),
                            true, settings);
  const json& pod = job["spec"]["template"]["spec"];
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "own/image:2");  // spec.backup.image wins over the default
  EXPECT_EQ(job["metadata"]["annotations"][kAnnotationTrigger], "true");
  json projected = Find(pod["volumes"], "openbao-token")["projected"]["sources"][0];
  EXPECT_EQ(projected["serviceAccountToken"]["audience"], "openbao-internal");  // the default
  EXPECT_EQ(projected["serviceAccountToken"]["path"], "openbao-token");
  EXPECT_EQ(Find(c["volumeMounts"], "openbao-token")["mountPath"], "/var/run/secrets/tokens");
  EXPECT_TRUE(Find(pod["volumes"], "bao-token").is_null());
  EXPECT_TRUE(Find(pod["volumes"], "storage-credentials").is_null());
  const json& args = c["args"];
  EXPECT_EQ(ArgAfter(args, "--jwt-role"), "backup-role");
  EXPECT_EQ(ArgAfter(args, "--jwt-token-file"), "/var/run/secrets/tokens/openbao-token");
  EXPECT_EQ(ArgAfter(args, "--jwt-mount"), "jwt-operator");
  EXPECT_FALSE(HasArg(args, "--bao-token-file"));
  EXPECT_FALSE(HasArg(args, "--credentials-dir"));  // ambient identity

  // OPENBAO_JWT_AUDIENCE (JobSettings::jwt_audience) overrides the audience; the limits too.
  settings.jwt_audience = "https://bao.example.com";
  settings.backoff_limit = 2;
  settings.active_deadline_seconds = 600;
  settings.ttl_seconds_after_finished = 120;
  job = BuildBackupJob(Cluster(), Spec(backup), "backup-role", At("2025-01-15T03:00:00Z"), false,
                       settings);
  EXPECT_EQ(Find(job["spec"]["template"]["spec"]["volumes"],
                 "openbao-token")["projected"]["sources"][0]["serviceAccountToken"]["audience"],
            "https://bao.example.com");
  EXPECT_EQ(job["spec"]["backoffLimit"], 2);
  EXPECT_EQ(job["spec"]["activeDeadlineSeconds"], 600);
  EXPECT_EQ(job["spec"]["ttlSecondsAfterFinished"], 120);
}

// Each extra target reaches the executor as a file (a Pod annotation projected by a downwardAPI
// volume) that names where its credentials Secret is mounted; the Secret reference itself (a
// name only the operator resolves) is not in it.
TEST(JobBuilderTest, ExtraTargetsAreFilesWithTheirOwnCredentials) {
  json backup = TokenBackup();
  backup["extraTargets"] = json::array({{{"name", "dr"},
                                         {"provider", "azure"},
                                         {"bucket", "copies"},
                                         {"azure", {{"storageAccount", "acct"}}},
                                         {"credentialsSecretRef", {{"name", "azure-creds"}}}},
                                        {{"provider", "gcs"}, {"bucket", "g"}}});
  JobSettings settings;
  json job =
      BuildBackupJob(Cluster(), Spec(backup), "", At("2025-01-15T03:00:00Z"), false, settings);
  const json& pod = job["spec"]["template"]["spec"];
  const json& args = pod["containers"][0]["args"];
  std::vector<std::string> files;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--extra-target") files.push_back(args[i + 1]);
  }
  EXPECT_EQ(files, (std::vector<std::string>{std::string(kExtraTargetsDir) + "/0.json",
                                             std::string(kExtraTargetsDir) + "/1.json"}));
  const json& annotations = job["spec"]["template"]["metadata"]["annotations"];
  json first =
      json::parse(annotations[std::string(kAnnotationExtraTargetPrefix) + "0"].get<std::string>());
  EXPECT_EQ(first["name"], "dr");
  EXPECT_EQ(first["provider"], "azure");
  EXPECT_EQ(first["credentialsDir"], std::string(kExtraCredentialsDir) + "/0");
  EXPECT_FALSE(first.contains("credentialsSecretRef")) << first.dump();
  json second =
      json::parse(annotations[std::string(kAnnotationExtraTargetPrefix) + "1"].get<std::string>());
  EXPECT_EQ(second["name"], "extra-2");
  EXPECT_FALSE(second.contains("credentialsDir")) << "ambient identity: " << second.dump();
  // The projected files and the one Secret.
  json projected = Find(pod["volumes"], "extra-targets");
  ASSERT_FALSE(projected.is_null());
  const json& items = projected["downwardAPI"]["items"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["path"], "0.json");
  EXPECT_EQ(items[0]["fieldRef"]["fieldPath"],
            "metadata.annotations['" + std::string(kAnnotationExtraTargetPrefix) + "0']");
  EXPECT_EQ(Find(pod["volumes"], "extra-credentials-0")["secret"]["secretName"], "azure-creds");
  EXPECT_EQ(Find(pod["volumes"], "extra-credentials-0")["secret"]["optional"], true)
      << "a missing Secret must not keep the primary backup from starting";
  EXPECT_TRUE(Find(pod["volumes"], "extra-credentials-1").is_null());
  const json& mounts = pod["containers"][0]["volumeMounts"];
  EXPECT_EQ(Find(mounts, "extra-targets")["mountPath"], kExtraTargetsDir);
  EXPECT_EQ(Find(mounts, "extra-credentials-0")["mountPath"],
            std::string(kExtraCredentialsDir) + "/0");
  // And the spec without extra targets has none of it.
  json plain = BuildBackupJob(Cluster(), Spec(TokenBackup()), "", At("2025-01-15T03:00:00Z"), false,
                              settings);
  EXPECT_FALSE(
      HasArg(plain["spec"]["template"]["spec"]["containers"][0]["args"], "--extra-target"));
  EXPECT_TRUE(Find(plain["spec"]["template"]["spec"]["volumes"], "extra-targets").is_null());
}

TEST(JobBuilderTest, TargetFlagsOfOtherProviders) {
  json backup = TokenBackup();
  backup["target"] = {
      {"provider", "azure"},        {"bucket", "c"},
      {"insecureSkipVerify", true}, {"partSize", 5242880},
      {"concurrency", 10},          {"azure", {{"storageAccount", "acct"}, {"container", "cont"}}}};
  json cluster = Cluster();
  cluster["spec"].erase("replicas");  // defaults to one address
  json args = BackupArgs(cluster, Spec(backup), "");
  EXPECT_EQ(ArgAfter(args, "--provider"), "azure");
  EXPECT_EQ(ArgAfter(args, "--storage-account"), "acct");
  EXPECT_EQ(ArgAfter(args, "--container"), "cont");
  EXPECT_EQ(ArgAfter(args, "--part-size"), "5242880");
  EXPECT_EQ(ArgAfter(args, "--concurrency"), "10");
  EXPECT_TRUE(HasArg(args, "--insecure-skip-verify"));
  EXPECT_FALSE(HasArg(args, "--use-path-style"));
  int addrs = 0;
  for (const json& a : args) addrs += a == "--bao-addr";
  EXPECT_EQ(addrs, 1);
}

// Encryption at rest and object lock reach the executor as the CLI's flags, for each provider.
TEST(JobBuilderTest, ProtectionFieldsBecomeExecutorFlags) {
  json backup = TokenBackup();
  backup["target"]["sse"] = "aws:kms";
  backup["target"]["kmsKeyId"] = "key-1";
  backup["target"]["objectLock"] = {{"mode", "COMPLIANCE"}, {"retainDays", 30}};
  json args = BackupArgs(Cluster(), Spec(backup), "");
  EXPECT_EQ(ArgAfter(args, "--sse"), "aws:kms");
  EXPECT_EQ(ArgAfter(args, "--kms-key-id"), "key-1");
  EXPECT_EQ(ArgAfter(args, "--object-lock-mode"), "COMPLIANCE");
  EXPECT_EQ(ArgAfter(args, "--object-lock-retain-days"), "30");

  json gcs = TokenBackup();
  gcs["target"] = {{"provider", "gcs"}, {"bucket", "b"}, {"gcs", {{"kmsKeyName", "projects/p/k"}}}};
  args = BackupArgs(Cluster(), Spec(gcs), "");
  EXPECT_EQ(ArgAfter(args, "--kms-key-name"), "projects/p/k");
  EXPECT_FALSE(HasArg(args, "--sse"));
  EXPECT_FALSE(HasArg(args, "--object-lock-mode"));

  json azure = TokenBackup();
  azure["target"] = {{"provider", "azure"},
                     {"bucket", "c"},
                     {"azure", {{"storageAccount", "acct"}, {"encryptionScope", "scope1"}}}};
  args = BackupArgs(Cluster(), Spec(azure), "");
  EXPECT_EQ(ArgAfter(args, "--encryption-scope"), "scope1");
}

TEST(JobBuilderTest, RoleArnGetsTheProjectedTokenAndVariablesEksWouldSet) {
  json backup = TokenBackup();
  backup["target"].erase("credentialsSecretRef");
  backup["target"]["roleArn"] = "arn:aws:iam::123456789012:role/bao-backup";
  json job = BuildBackupJob(Cluster(), Spec(backup), "", At("2025-01-15T03:00:00Z"), false, {});
  const json& pod = job["spec"]["template"]["spec"];
  const json& c = pod["containers"][0];
  json env = c["env"];
  EXPECT_EQ(Find(env, "AWS_ROLE_ARN")["value"], "arn:aws:iam::123456789012:role/bao-backup");
  EXPECT_EQ(Find(env, "AWS_WEB_IDENTITY_TOKEN_FILE")["value"],
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token");
  EXPECT_EQ(Find(c["volumeMounts"], "aws-iam-token")["mountPath"],
            "/var/run/secrets/eks.amazonaws.com/serviceaccount");
  json token = Find(pod["volumes"], "aws-iam-token")["projected"]["sources"][0];
  EXPECT_EQ(token["serviceAccountToken"]["audience"], "sts.amazonaws.com");
  EXPECT_EQ(token["serviceAccountToken"]["path"], "token");
  // Without roleArn: no AWS variables at all.
  json plain =
      BuildBackupJob(Cluster(), Spec(TokenBackup()), "", At("2025-01-15T03:00:00Z"), false, {});
  EXPECT_FALSE(plain["spec"]["template"]["spec"]["containers"][0].contains("env"));
}

TEST(JobBuilderTest, LongClusterNamesGetValidDistinctLabelValuesAndKeepTheFullName) {
  const std::string long_a(100, 'a');
  const std::string long_b = std::string(99, 'a') + "b";
  EXPECT_EQ(ClusterLabelValue("bao"), "bao");
  EXPECT_EQ(ClusterLabelValue(std::string(63, 'x')), std::string(63, 'x'));
  EXPECT_EQ(ClusterLabelValue(long_a).size(), 63u);
  EXPECT_NE(ClusterLabelValue(long_a), ClusterLabelValue(long_b));
  json job = BuildBackupJob(Cluster(long_a), Spec(TokenBackup()), "", At("2025-01-15T03:00:00Z"),
                            false, {});
  const json& meta = job["metadata"];
  EXPECT_EQ(meta["labels"][kLabelCluster], ClusterLabelValue(long_a));
  EXPECT_EQ(job["spec"]["template"]["metadata"]["labels"][kLabelCluster],
            ClusterLabelValue(long_a));
  EXPECT_EQ(meta["annotations"][kAnnotationCluster], long_a);
  EXPECT_LE(meta["name"].get<std::string>().size(), 63u);
  EXPECT_EQ(BackupJobSelector(long_a), std::string(kLabelCluster) + "=" +
                                           ClusterLabelValue(long_a) +
                                           ",app.kubernetes.io/component=backup");
  EXPECT_EQ(meta["ownerReferences"][0], OwnerReference(Cluster(long_a)));
}

}  // namespace
}  // namespace bao::op
