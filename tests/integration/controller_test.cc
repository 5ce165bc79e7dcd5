// The operator's controller (operator/controller.h RunController) run in this process against
// the project's Kubernetes API imitation: its informers, work-queue worker, leader election
// and HTTP endpoints on their threads at once. The ThreadSanitizer build runs it too (label
// tsan there): no other test runs the controller in-process.
#include "operator/controller.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "crypto/crypto.h"
#include "k8s/client.h"
#include "operator/job_builder.h"
#include "support/k8s_testserver.h"
#include "support/testing.h"

namespace bao::op {
namespace {

using bao::testing::FreePort;
using bao::testing::K8sTestServer;
using bao::testing::WaitUntil;
using json = nlohmann::json;
using namespace std::chrono_literals;

json Secret(const std::string& name, const json& data) {
  json encoded = json::object();
  for (const auto& [k, v] : data.items()) encoded[k] = crypto::Base64Encode(v.get<std::string>());
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", name}, {"namespace", "team"}}},
          {"data", encoded}};
}

// The condition `type` of `cluster`'s status has status "True".
bool ConditionTrue(const json& cluster, const std::string& type) {
  if (!cluster.contains("status") || !cluster["status"].contains("conditions")) return false;
  for (const json& c : cluster["status"]["conditions"]) {
    if (c.value("type", "") == type && c.value("status", "") == "True") return true;
  }
  return false;
}

TEST(ControllerTest, ReconcilesTriggersAJobServesMetricsAndHandsTheLeaseBack) {
  K8sTestServer server;
  std::string error;
  ASSERT_TRUE(server.Start({}, &error)) << error;
  k8s::Config config;
  config.server = server.url();
  k8s::Client admin(config);
  ASSERT_TRUE(admin
                  .Create(k8s::kSecrets, "team",
                          Secret("s3-creds", {{"accessKeyId", "AKIA"}, {"secretAccessKey", "x"}}))
                  .ok());
  ASSERT_TRUE(admin.Create(k8s::kSecrets, "team", Secret("bao-token", {{"token", "s.test"}})).ok());
  ASSERT_TRUE(admin
                  .Create(k8s::kSecrets, "team",
                          Secret("bao-tls-ca", {{"ca.crt", "-----BEGIN CERTIFICATE-----\n"}}))
                  .ok());
  json backup = {{"schedule", "0 3 * * *"},
                 {"target",
                  {{"provider", "s3"},
                   {"endpoint", "https://s3.example.com"},
                   {"bucket", "backups"},
                   {"credentialsSecretRef", {{"name", "s3-creds"}}}}},
                 {"tokenSecretRef", {{"name", "bao-token"}}},
                 {"retention", {{"maxCount", 7}}}};
  json cluster = {{"apiVersion", "openbao.org/v1alpha1"},
                  {"kind", "OpenBaoCluster"},
                  {"metadata", {{"name", "bao"}, {"namespace", "team"}}},
                  {"spec", {{"version", "2.1.0"}, {"replicas", 3}, {"backup", backup}}}};
  ASSERT_TRUE(admin.Create(k8s::kOpenBaoClusters, "team", cluster).ok());
  ASSERT_TRUE(admin
                  .PatchStatus(k8s::kOpenBaoClusters, "team", "bao",
                               {{"status", {{"phase", "Running"}, {"currentVersion", "2.1.0"}}}})
                  .ok());

  k8s::Client client(config);
  ControllerOptions options;
  options.identity = "controller-test";
  options.lease_namespace = "default";
  const int port = FreePort();
  options.metrics_bind_address = "127.0.0.1:" + std::to_string(port);
  options.manager.job.default_image = "bao-backup:test";
  CancelSource stop;
  Status result = Internal("RunController did not return");
  std::thread run([&] { result = RunController(&client, options, Context(&stop)); });
  struct Joiner {  // stops the controller however the test ends
    CancelSource* stop;
    std::thread* run;
    ~Joiner() {
      stop->Cancel();
      if (run->joinable()) run->join();
    }
  } joiner{&stop, &run};

  // Leading, it reconciles the cluster: the backup is configured and the next slot is known.
  EXPECT_TRUE(WaitUntil(
      [&] {
        Result<json> c = admin.Get(k8s::kOpenBaoClusters, "team", "bao");
        return c.ok() && ConditionTrue(*c, kConditionBackupConfigured) &&
               (*c)["status"].contains("backup") &&
               (*c)["status"]["backup"].value("nextScheduledBackup", "") != "";
      },
      60s));
  // A manual trigger gets its Job at once.
  ASSERT_TRUE(admin
                  .MergePatch(k8s::kOpenBaoClusters, "team", "bao",
                              {{"metadata", {{"annotations", {{kAnnotationTrigger, "now"}}}}}})
                  .ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        Result<k8s::ObjectList> jobs = admin.List(k8s::kJobs, "team");
        if (!jobs.ok()) return false;
        for (const json& j : jobs->items) {
          if (j["metadata"].value("name", "").starts_with("backup-bao-")) return true;
        }
        return false;
      },
      60s));
  httplib::Client http("127.0.0.1", port);
  httplib::Result metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("\nbao_operator_reconcile_total "), std::string::npos)
      << metrics->body;

  stop.Cancel();
  run.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  // Stopping hands the Lease back.
  Result<json> lease = admin.Get(k8s::kLeases, "default", "bao-backup-operator");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ((*lease)["spec"].value("holderIdentity", "?"), "");
}

}  // namespace
}  // namespace bao::op
