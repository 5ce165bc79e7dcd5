// The Kubernetes client against the project's Kubernetes API test server: CRUD, conflicts,
// the status subresource, generation, merge patch, list/watch with bookmarks and 410 Gone,
// finalizers, owner-reference garbage collection, Events and bearer-token authentication.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/redact.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "support/k8s_testserver.h"
#include "support/testing.h"

namespace bao::k8s {
namespace {

using bao::testing::K8sTestServer;
using bao::testing::K8sTestServerOptions;
using bao::testing::WaitUntil;
using namespace std::chrono_literals;

constexpr char kToken[] = "k8s-test-token-0123456789";

class K8sApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    K8sTestServerOptions options;
    options.tokens = {kToken};
    ASSERT_TRUE(server_.Start(options, &error)) << error;
    Config config;
    config.server = server_.url();
    config.token = kToken;
    config.default_namespace = "ns1";
    RegisterSecret(kToken);
    client_ = std::make_unique<Client>(config);
  }

  json Cluster(const std::string& name) {
    return {{"apiVersion", "openbao.org/v1alpha1"},
            {"kind", "OpenBaoCluster"},
            {"metadata", {{"name", name}, {"labels", {{"app", "bao"}}}}},
            {"spec", {{"replicas", 3}, {"unknownField", {{"kept", true}}}}}};
  }

  K8sTestServer server_;
  std::unique_ptr<Client> client_;
};

std::string Rv(const json& obj) {
  return obj["metadata"]["resourceVersion"].get<std::string>();
}
int64_t Generation(const json& obj) {
  return obj["metadata"]["generation"].get<int64_t>();
}

TEST_F(K8sApiTest, CreateGetUpdateDeleteWithConflicts) {
  auto created = client_->Create(kOpenBaoClusters, "ns1", Cluster("c1"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE((*created)["metadata"]["uid"].get<std::string>().empty());
  EXPECT_FALSE((*created)["metadata"]["creationTimestamp"].get<std::string>().empty());
  EXPECT_EQ(Generation(*created), 1);

  auto dup = client_->Create(kOpenBaoClusters, "ns1", Cluster("c1"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_TRUE(IsAlreadyExists(dup.status()));
  EXPECT_FALSE(IsConflict(dup.status()));
  EXPECT_NE(dup.status().message().find("already exists"), std::string::npos);

  auto got = client_->Get(kOpenBaoClusters, "ns1", "c1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["spec"]["unknownField"]["kept"], true);  // unknown fields preserved

  json edit = *got;
  edit["spec"]["replicas"] = 5;
  auto updated = client_->Update(kOpenBaoClusters, "ns1", edit);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_NE(Rv(*updated), Rv(*got));
  EXPECT_EQ(Generation(*updated), 2);

  // The same stale object again: 409 Conflict, distinguishable from AlreadyExists.
  auto stale = client_->Update(kOpenBaoClusters, "ns1", edit);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(IsConflict(stale.status()));
  EXPECT_EQ(ReasonOf(stale.status()), "Conflict");
  EXPECT_EQ(HttpCodeOf(stale.status()), 409);

  // RetryOnConflict re-reads and wins.
  int attempts = 0;
  Status s = RetryOnConflict([&]() -> Status {
    ++attempts;
    json base = attempts == 1 ? edit : client_->Get(kOpenBaoClusters, "ns1", "c1").value();
    base["spec"]["replicas"] = 7;
    return client_->Update(kOpenBaoClusters, "ns1", base).status();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(attempts, 2);

  // Metadata-only change: resourceVersion moves, generation does not.
  auto labelled = client_->MergePatch(kOpenBaoClusters, "ns1", "c1",
                                      {{"metadata", {{"labels", {{"extra", "yes"}}}}}});
  ASSERT_TRUE(labelled.ok());
  EXPECT_EQ(Generation(*labelled), 3);
  EXPECT_EQ((*labelled)["metadata"]["labels"]["app"], "bao");

  auto missing = client_->Get(kOpenBaoClusters, "ns1", "nope");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_TRUE(IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find("\"nope\" not found"), std::string::npos);

  auto invalid = client_->Create(kSecrets, "ns1", {{"metadata", {{"name", "Bad_Name"}}}});
  EXPECT_EQ(invalid.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReasonOf(invalid.status()), "Invalid");

  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "not-the-uid";
  EXPECT_TRUE(IsConflict(client_->Delete(kOpenBaoClusters, "ns1", "c1", wrong_uid)));
  ASSERT_TRUE(client_->Delete(kOpenBaoClusters, "ns1", "c1").ok());
  EXPECT_TRUE(IsNotFound(client_->Get(kOpenBaoClusters, "ns1", "c1").status()));
  EXPECT_TRUE(IsNotFound(client_->Delete(kOpenBaoClusters, "ns1", "c1")));
}

TEST_F(K8sApiTest, StatusSubresourceAndGeneration) {
  json c = Cluster("c2");
  c["status"] = {{"phase", "Ignored"}};
  auto created = client_->Create(kOpenBaoClusters, "ns1", c);
  ASSERT_TRUE(created.ok());
  EXPECT_FALSE(created->contains("status"));  // status is dropped on create

  auto st = client_->PatchStatus(kOpenBaoClusters, "ns1", "c2",
                                 {{"status", {{"phase", "Running"}}}, {"spec", {{"replicas", 9}}}});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ((*st)["status"]["phase"], "Running");
  EXPECT_EQ((*st)["spec"]["replicas"], 3);  // /status ignores everything but status
  EXPECT_EQ(Generation(*st), 1);

  json main = *st;
  main["status"]["phase"] = "Hacked";
  main["spec"]["replicas"] = 4;
  auto upd = client_->Update(kOpenBaoClusters, "ns1", main);
  ASSERT_TRUE(upd.ok());
  EXPECT_EQ((*upd)["status"]["phase"], "Running");  // main endpoint ignores status
  EXPECT_EQ((*upd)["spec"]["replicas"], 4);
  EXPECT_EQ(Generation(*upd), 2);

  json status_put = *upd;
  status_put["status"]["backup"] = {{"consecutiveFailures", 1}};
  auto put = client_->UpdateStatus(kOpenBaoClusters, "ns1", status_put);
  ASSERT_TRUE(put.ok());
  EXPECT_EQ((*put)["status"]["backup"]["consecutiveFailures"], 1);
  EXPECT_EQ(Generation(*put), 2);
  // Stale status update conflicts too.
  EXPECT_TRUE(IsConflict(client_->UpdateStatus(kOpenBaoClusters, "ns1", status_put).status()));
}

TEST_F(K8sApiTest, MergePatchSemantics) {
  ASSERT_TRUE(client_
                  ->Create(kConfigMaps, "ns1",
                           {{"metadata", {{"name", "cm"}}}, {"data", {{"a", "1"}, {"b", "2"}}}})
                  .ok());
  auto p = client_->MergePatch(kConfigMaps, "ns1", "cm", {{"data", {{"a", nullptr}, {"c", "3"}}}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)["data"], json({{"b", "2"}, {"c", "3"}}));
  // A resourceVersion in the patch is a precondition.
  auto stale = client_->MergePatch(
      kConfigMaps, "ns1", "cm", {{"metadata", {{"resourceVersion", "1"}}}, {"data", {{"d", "4"}}}});
  EXPECT_TRUE(IsConflict(stale.status()));
  // A no-op patch keeps the resourceVersion.
  auto same = client_->MergePatch(kConfigMaps, "ns1", "cm", {{"data", {{"b", "2"}}}});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(Rv(*same), Rv(*p));
}

TEST_F(K8sApiTest, ListWithSelectorsAndGenerateName) {
  for (const char* env : {"prod", "dev", "prod"}) {
    auto c = client_->Create(
        kSecrets, "ns1",
        {{"metadata", {{"generateName", "s-"}, {"labels", {{"env", env}}}}}, {"type", "Opaque"}});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ((*c)["metadata"]["name"].get<std::string>().rfind("s-", 0), 0u);
  }
  ASSERT_TRUE(client_->Create(kSecrets, "ns2", {{"metadata", {{"name", "other"}}}}).ok());
  auto prod = client_->List(kSecrets, "ns1", {"env=prod", ""});
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(prod->items.size(), 2u);
  EXPECT_FALSE(prod->resource_version.empty());
  EXPECT_EQ(prod->items[0]["kind"], "Secret");
  auto set = client_->List(kSecrets, "ns1", {"env in (dev,qa),!missing", ""});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->items.size(), 1u);
  auto all = client_->List(kSecrets, "", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 4u);
  auto by_name = client_->List(kSecrets, "", {"", "metadata.name=other"});
  ASSERT_TRUE(by_name.ok());
  ASSERT_EQ(by_name->items.size(), 1u);
  EXPECT_EQ(by_name->items[0]["metadata"]["namespace"], "ns2");
  EXPECT_EQ(client_->List(kSecrets, "", {"a in (", ""}).status().code(), Code::kInvalidArgument);
}

TEST_F(K8sApiTest, WatchDeliversEventsBookmarksAndGone) {
  auto list = client_->List(kJobs, "ns1");
  ASSERT_TRUE(list.ok());
  std::mutex mu;
  std::vector<WatchEvent> events;
  CancelSource stop;
  Status watch_status;
  std::thread watcher([&] {
    WatchOptions wo;
    wo.resource_version = list->resource_version;
    wo.label_selector = "app=bao";
    watch_status = client_->Watch(
        kJobs, "ns1", wo,
        [&](const WatchEvent& e) {
          std::lock_guard<std::mutex> lock(mu);
          events.push_back(e);
          return Status::Ok();
        },
        Context(&stop));
  });
  auto count = [&](const std::string& type) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(events.begin(), events.end(),
                         [&](const WatchEvent& e) { return e.type == type; });
  };
  json job = {{"metadata", {{"name", "j1"}, {"labels", {{"app", "bao"}}}}},
              {"spec", json::object()}};
  ASSERT_TRUE(client_->Create(kJobs, "ns1", job).ok());
  ASSERT_TRUE(client_->Create(kJobs, "ns1", {{"metadata", {{"name", "unlabelled"}}}}).ok());
  ASSERT_TRUE(client_->PatchStatus(kJobs, "ns1", "j1", {{"status", {{"active", 1}}}}).ok());
  // Leaving the selector is seen as DELETED.
  ASSERT_TRUE(
      client_->MergePatch(kJobs, "ns1", "j1", {{"metadata", {{"labels", {{"app", nullptr}}}}}})
          .ok());
  EXPECT_TRUE(WaitUntil([&] { return count("DELETED") == 1 && count("BOOKMARK") >= 1; }, 5s));
  EXPECT_EQ(count("ADDED"), 1);
  EXPECT_EQ(count("MODIFIED"), 1);
  stop.Cancel();
  watcher.join();
  EXPECT_EQ(watch_status.code(), Code::kAborted);

  // After compaction the old resourceVersion is gone: an ERROR event with 410.
  ASSERT_TRUE(server_.Compact());
  WatchOptions old;
  old.resource_version = list->resource_version;
  Status gone = client_->Watch(kJobs, "ns1", old, [](const WatchEvent&) { return Status::Ok(); });
  EXPECT_TRUE(IsGone(gone)) << gone.ToString();
  // Re-list and resume from the fresh resourceVersion: works; the server timeout ends it.
  auto fresh = client_->List(kJobs, "ns1");
  ASSERT_TRUE(fresh.ok());
  WatchOptions resumed;
  resumed.resource_version = fresh->resource_version;
  resumed.timeout_seconds = 1;
  EXPECT_TRUE(
      client_->Watch(kJobs, "ns1", resumed, [](const WatchEvent&) { return Status::Ok(); }).ok());
}

TEST_F(K8sApiTest, FinalizersKeepObjectUntilRemoved) {
  auto c = client_->Create(kOpenBaoRestores, "ns1",
                           {{"metadata", {{"name", "r1"}, {"finalizers", {"openbao.org/lock"}}}},
                            {"spec", {{"cluster", "c1"}}}});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(client_->Delete(kOpenBaoRestores, "ns1", "r1").ok());
  auto deleting = client_->Get(kOpenBaoRestores, "ns1", "r1");
  ASSERT_TRUE(deleting.ok());
  EXPECT_TRUE((*deleting)["metadata"].contains("deletionTimestamp"));
  // No new finalizers while deleting.
  auto add = client_->MergePatch(kOpenBaoRestores, "ns1", "r1",
                                 {{"metadata", {{"finalizers", {"openbao.org/lock", "x/y"}}}}});
  EXPECT_EQ(add.status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(
      client_->MergePatch(kOpenBaoRestores, "ns1", "r1", {{"metadata", {{"finalizers", nullptr}}}})
          .ok());
  EXPECT_TRUE(IsNotFound(client_->Get(kOpenBaoRestores, "ns1", "r1").status()));
}

TEST_F(K8sApiTest, OwnerReferenceGarbageCollection) {
  auto owner = client_->Create(kOpenBaoClusters, "ns1", Cluster("owner"));
  ASSERT_TRUE(owner.ok());
  json ref = {{"apiVersion", "openbao.org/v1alpha1"},
              {"kind", "OpenBaoCluster"},
              {"name", "owner"},
              {"uid", (*owner)["metadata"]["uid"]},
              {"controller", true},
              {"blockOwnerDeletion", true}};
  auto dep = [&](const Resource& r, const std::string& name) {
    return client_->Create(r, "ns1", {{"metadata", {{"name", name}, {"ownerReferences", {ref}}}}});
  };
  ASSERT_TRUE(dep(kServiceAccounts, "sa").ok());
  ASSERT_TRUE(dep(kJobs, "job").ok());
  ASSERT_TRUE(
      client_
          ->Create(
              kConfigMaps, "ns1",
              {{"metadata",
                {{"name", "held"}, {"ownerReferences", {ref}}, {"finalizers", {"test/hold"}}}}})
          .ok());
  // Background (default): the owner goes at once, dependents after it.
  ASSERT_TRUE(client_->Delete(kOpenBaoClusters, "ns1", "owner").ok());
  EXPECT_TRUE(IsNotFound(client_->Get(kOpenBaoClusters, "ns1", "owner").status()));
  EXPECT_TRUE(IsNotFound(client_->Get(kServiceAccounts, "ns1", "sa").status()));
  EXPECT_TRUE(IsNotFound(client_->Get(kJobs, "ns1", "job").status()));
  auto held = client_->Get(kConfigMaps, "ns1", "held");
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE((*held)["metadata"].contains("deletionTimestamp"));

  // Foreground: the owner waits for its dependents.
  auto owner2 = client_->Create(kOpenBaoClusters, "ns1", Cluster("owner2"));
  ASSERT_TRUE(owner2.ok());
  ref["name"] = "owner2";
  ref["uid"] = (*owner2)["metadata"]["uid"];
  ASSERT_TRUE(
      client_
          ->Create(kPods, "ns1",
                   {{"metadata",
                     {{"name", "pod"}, {"ownerReferences", {ref}}, {"finalizers", {"test/hold"}}}}})
          .ok());
  DeleteOptions fg;
  fg.propagation_policy = "Foreground";
  ASSERT_TRUE(client_->Delete(kOpenBaoClusters, "ns1", "owner2", fg).ok());
  auto waiting = client_->Get(kOpenBaoClusters, "ns1", "owner2");
  ASSERT_TRUE(waiting.ok());
  EXPECT_TRUE((*waiting)["metadata"].contains("deletionTimestamp"));
  ASSERT_TRUE(
      client_->MergePatch(kPods, "ns1", "pod", {{"metadata", {{"finalizers", nullptr}}}}).ok());
  EXPECT_TRUE(IsNotFound(client_->Get(kPods, "ns1", "pod").status()));
  EXPECT_TRUE(IsNotFound(client_->Get(kOpenBaoClusters, "ns1", "owner2").status()));

  // Orphan: dependents stay, without the owner reference.
  auto owner3 = client_->Create(kOpenBaoClusters, "ns1", Cluster("owner3"));
  ASSERT_TRUE(owner3.ok());
  ref["name"] = "owner3";
  ref["uid"] = (*owner3)["metadata"]["uid"];
  ASSERT_TRUE(dep(kSecrets, "kept").ok());
  DeleteOptions orphan;
  orphan.propagation_policy = "Orphan";
  ASSERT_TRUE(client_->Delete(kOpenBaoClusters, "ns1", "owner3", orphan).ok());
  auto kept = client_->Get(kSecrets, "ns1", "kept");
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE((*kept)["metadata"].contains("ownerReferences"));
}

TEST_F(K8sApiTest, EventsAreRecordedAggregatedAndRedacted) {
  auto obj = client_->Create(kOpenBaoClusters, "ns1", Cluster("ev"));
  ASSERT_TRUE(obj.ok());
  RegisterSecret("s3cr3t-value-xyz");
  EventRecorder recorder(client_.get(), "bao-backup");
  ASSERT_TRUE(recorder.Warning(*obj, "BackupFailed", "token s3cr3t-value-xyz rejected").ok());
  ASSERT_TRUE(recorder.Warning(*obj, "BackupFailed", "token s3cr3t-value-xyz rejected").ok());
  ASSERT_TRUE(recorder.Normal(*obj, "BackupSucceeded", "ok").ok());
  auto events = client_->List(kEvents, "ns1");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->items.size(), 2u);
  for (const auto& e : events->items) {
    EXPECT_EQ(e["involvedObject"]["uid"], (*obj)["metadata"]["uid"]);
    EXPECT_EQ(e["involvedObject"]["kind"], "OpenBaoCluster");
    if (e["reason"] == "BackupFailed") {
      EXPECT_EQ(e["type"], "Warning");
      EXPECT_EQ(e["count"], 2);
      EXPECT_EQ(e["message"], "token [REDACTED] rejected");
    } else {
      EXPECT_EQ(e["type"], "Normal");
      EXPECT_EQ(e["count"], 1);
    }
  }
}

TEST_F(K8sApiTest, TokenIsRequiredAndReReadFromFile) {
  Config anonymous;
  anonymous.server = server_.url();
  Client bad(anonymous);
  auto denied = bad.Get(kSecrets, "ns1", "x");
  EXPECT_EQ(denied.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(ReasonOf(denied.status()), "Unauthorized");

  bao::testing::TempDir dir;
  bao::testing::WriteText(dir.File("token"), kToken);
  Config from_file;
  from_file.server = server_.url();
  from_file.token_file = dir.File("token");
  Client rotating(from_file);
  EXPECT_TRUE(IsNotFound(rotating.Get(kSecrets, "ns1", "x").status()));  // authenticated
  // The server now only accepts a new token; the client picks up the rotated file.
  const std::string next = "k8s-rotated-token-abcdef";
  ASSERT_TRUE(server_.SetTokens({next}));
  EXPECT_EQ(rotating.Get(kSecrets, "ns1", "x").status().code(), Code::kUnauthenticated);
  bao::testing::WriteText(dir.File("token.tmp"), next);
  ASSERT_EQ(rename(dir.File("token.tmp").c_str(), dir.File("token").c_str()), 0);
  auto after = rotating.Get(kSecrets, "ns1", "x");
  EXPECT_TRUE(IsNotFound(after.status())) << after.status().ToString();
  EXPECT_EQ(after.status().message().find(next), std::string::npos);
}

TEST(K8sTlsTest, InClusterConfigOverTlsWithCa) {
  bao::testing::TempDir dir;
  auto gen =
      bao::testing::Run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                         dir.File("key.pem"), "-out", dir.File("cert.pem"), "-days", "1", "-subj",
                         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                        {}, 60s);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  K8sTestServer server;
  K8sTestServerOptions options;
  options.tokens = {"in-cluster-sa-token-123"};
  options.tls_cert = dir.File("cert.pem");
  options.tls_key = dir.File("key.pem");
  std::string error;
  ASSERT_TRUE(server.Start(options, &error)) << error;
  std::string port = server.url().substr(server.url().rfind(':') + 1);
  bao::testing::WriteText(dir.File("token"), "in-cluster-sa-token-123\n");
  bao::testing::WriteText(dir.File("namespace"), "bao-system");
  setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", port.c_str(), 1);
  auto config = InClusterConfig({dir.File("token"), dir.File("cert.pem"), dir.File("namespace")});
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Client client(*config);
  auto created = client.Create(kConfigMaps, "", {{"metadata", {{"name", "tls"}}}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)["metadata"]["namespace"], "bao-system");

  Config wrong_ca = *config;
  wrong_ca.tls.ca_file = "";
  Client untrusted(wrong_ca);
  EXPECT_EQ(untrusted.Get(kConfigMaps, "", "tls").status().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace bao::k8s
