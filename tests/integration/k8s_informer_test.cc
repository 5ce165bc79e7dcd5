// Informer cache convergence (including after a forced 410 Gone) and Lease-based leader
// election against the project's Kubernetes API test server.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "k8s/client.h"
#include "k8s/informer.h"
#include "k8s/leader.h"
#include "support/k8s_testserver.h"
#include "support/testing.h"

namespace bao::k8s {
namespace {

using bao::testing::K8sTestServer;
using bao::testing::K8sTestServerOptions;
using bao::testing::WaitUntil;
using namespace std::chrono_literals;

class K8sInformerTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& tokens = {}) {
    std::string error;
    K8sTestServerOptions options;
    options.tokens = tokens;
    ASSERT_TRUE(server_.Start(options, &error)) << error;
  }
  std::unique_ptr<Client> NewClient(const std::string& token = "") {
    Config config;
    config.server = server_.url();
    config.token = token;
    return std::make_unique<Client>(config);
  }
  K8sTestServer server_;
};

TEST_F(K8sInformerTest, CacheConvergesThroughChangesAndForcedRelist) {
  Start();
  auto client = NewClient();
  ASSERT_TRUE(client->Create(kOpenBaoClusters, "ns1", {{"metadata", {{"name", "pre"}}}}).ok());
  std::mutex mu;
  std::vector<std::string> seen;
  InformerOptions options;
  options.resource = kOpenBaoClusters;
  options.ns = "ns1";
  options.initial_backoff = 50ms;
  Informer informer(client.get(), options, [&](EventType type, const json& obj) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(std::string(EventTypeName(type)) + " " + ObjectKey(obj));
  });
  auto saw = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    return std::find(seen.begin(), seen.end(), what) != seen.end();
  };
  auto phase = [&](const std::string& name) -> std::string {
    auto obj = informer.Get("ns1", name);
    if (!obj || !obj->contains("status")) return "";
    return (*obj)["status"].value("phase", "");
  };
  informer.Start();
  ASSERT_TRUE(WaitUntil([&] { return informer.HasSynced(); }, 30s));
  EXPECT_TRUE(saw("ADDED ns1/pre"));

  ASSERT_TRUE(client->Create(kOpenBaoClusters, "ns1", {{"metadata", {{"name", "a"}}}}).ok());
  ASSERT_TRUE(client->Create(kOpenBaoClusters, "ns2", {{"metadata", {{"name", "x"}}}}).ok());
  ASSERT_TRUE(
      client->PatchStatus(kOpenBaoClusters, "ns1", "a", {{"status", {{"phase", "Running"}}}}).ok());
  ASSERT_TRUE(client->Delete(kOpenBaoClusters, "ns1", "pre").ok());
  // The handler runs after the cache has changed (informer.h), so the wait covers both.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return phase("a") == "Running" && !informer.Get("ns1", "pre").has_value() &&
               saw("MODIFIED ns1/a") && saw("DELETED ns1/pre");
      },
      30s));
  EXPECT_TRUE(saw("MODIFIED ns1/a"));
  EXPECT_TRUE(saw("DELETED ns1/pre"));
  EXPECT_FALSE(informer.Get("ns2", "x").has_value());  // other namespace
  EXPECT_EQ(informer.ListCount(), 1);

  // Force a 410: stop the informer, change things, compact the history, start it again. It
  // resumes from its old resourceVersion, gets 410, lists again and reports what it missed.
  informer.Stop();
  ASSERT_TRUE(client->Create(kOpenBaoClusters, "ns1", {{"metadata", {{"name", "b"}}}}).ok());
  ASSERT_TRUE(
      client->PatchStatus(kOpenBaoClusters, "ns1", "a", {{"status", {{"phase", "Sealed"}}}}).ok());
  ASSERT_TRUE(client->Delete(kOpenBaoClusters, "ns1", "a").ok());
  ASSERT_TRUE(server_.Compact());
  informer.Start();
  EXPECT_TRUE(WaitUntil(
      [&] {
        return informer.ListCount() == 2 && informer.Get("ns1", "b").has_value() &&
               !informer.Get("ns1", "a").has_value() && saw("ADDED ns1/b") && saw("DELETED ns1/a");
      },
      5s));
  EXPECT_TRUE(saw("ADDED ns1/b"));
  EXPECT_TRUE(saw("DELETED ns1/a"));
  EXPECT_EQ(informer.List().size(), 1u);

  // And it keeps watching after the re-list.
  ASSERT_TRUE(client->Create(kOpenBaoClusters, "ns1", {{"metadata", {{"name", "c"}}}}).ok());
  EXPECT_TRUE(WaitUntil([&] { return informer.Get("ns1", "c").has_value(); }, 30s));
  // Stop() ends the watch in progress instead of waiting for it to time out on its own (after
  // watch_timeout_seconds, 300 s here).
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    informer.Stop();
    stopped = true;
  });
  EXPECT_TRUE(WaitUntil([&] { return stopped.load(); }, 60s));
  stopper.join();
}

TEST_F(K8sInformerTest, InformerSurvivesServerErrorsWithBackoff) {
  Start({"informer-token-123456"});
  auto client = NewClient("informer-token-123456");
  InformerOptions options;
  options.resource = kSecrets;
  options.ns = "ns1";
  options.initial_backoff = 50ms;
  options.max_backoff = 200ms;
  options.watch_timeout_seconds = 1;  // reconnect often, so the revoked token is noticed
  Informer informer(client.get(), options, nullptr);
  informer.Start();
  ASSERT_TRUE(WaitUntil([&] { return informer.HasSynced(); }, 30s));
  // Revoke the token: the next watch request fails with 401 and is retried with backoff.
  ASSERT_TRUE(server_.SetTokens({"someone-else-000000"}));
  EXPECT_TRUE(WaitUntil([&] { return informer.ErrorCount() >= 2; }, 30s));
  auto admin = NewClient("someone-else-000000");
  ASSERT_TRUE(admin->Create(kSecrets, "ns1", {{"metadata", {{"name", "s"}}}}).ok());
  ASSERT_TRUE(server_.Compact());  // the informer's resourceVersion is now too old
  // Give the access back: the informer gets 410, lists again and converges.
  ASSERT_TRUE(server_.SetTokens({"informer-token-123456", "someone-else-000000"}));
  EXPECT_TRUE(WaitUntil([&] { return informer.Get("ns1", "s").has_value(); }, 30s));
  EXPECT_GE(informer.ListCount(), 2);
}

LeaderElectionConfig Election(const std::string& identity, const Clock* clock) {
  LeaderElectionConfig c;
  c.ns = "bao-system";
  c.name = "bao-backup-operator";
  c.identity = identity;
  c.lease_duration = 2s;
  c.renew_deadline = 1500ms;
  c.retry_period = 200ms;
  c.clock = clock;
  return c;
}

TEST_F(K8sInformerTest, LeaderElectionSteppedWithFakeClock) {
  Start();
  auto client = NewClient();
  ManualClock clock(std::chrono::system_clock::now());
  LeaderElector a(client.get(), Election("a", &clock));
  LeaderElector b(client.get(), Election("b", &clock));

  auto ra = a.TryAcquireOrRenew();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  EXPECT_TRUE(*ra);
  auto rb = b.TryAcquireOrRenew();
  ASSERT_TRUE(rb.ok());
  EXPECT_FALSE(*rb);
  EXPECT_TRUE(a.IsLeader());
  EXPECT_FALSE(b.IsLeader());

  // A renews; B keeps seeing a live lease.
  clock.Advance(1s);
  EXPECT_TRUE(*a.TryAcquireOrRenew());
  clock.Advance(1500ms);
  EXPECT_FALSE(*b.TryAcquireOrRenew());  // renewed 1.5 s ago (as B observed) < 2 s

  // A stops renewing. A's own view lapses after renew_deadline, before B may take over.
  clock.Advance(1600ms);
  EXPECT_FALSE(a.IsLeader());
  EXPECT_FALSE(*b.TryAcquireOrRenew());  // B observed the renewal 1.6 s ago
  clock.Advance(500ms);
  EXPECT_TRUE(*b.TryAcquireOrRenew());
  EXPECT_TRUE(b.IsLeader());
  auto lease = client->Get(kLeases, "bao-system", "bao-backup-operator");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "b");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  EXPECT_EQ((*lease)["spec"]["leaseDurationSeconds"], 2);
  // renewTime is a MicroTime with six fractional digits.
  EXPECT_EQ((*lease)["spec"]["renewTime"].get<std::string>().size(),
            std::string("2025-01-15T03:00:00.000000Z").size());
  // A comes back: it sees B's live lease and does not lead.
  EXPECT_FALSE(*a.TryAcquireOrRenew());
  EXPECT_FALSE(a.IsLeader());
}

TEST_F(K8sInformerTest, TwoCandidatesNeverLeadTogetherAndFailOver) {
  Start({"token-a-0123456", "token-b-0123456"});
  auto ca = NewClient("token-a-0123456");
  auto cb = NewClient("token-b-0123456");
  std::atomic<int> leaders{0};
  std::atomic<bool> overlap{false};
  auto track = [&](bool leading) {
    int n = leading ? ++leaders : --leaders;
    if (n > 1) overlap = true;
  };
  auto a = std::make_unique<LeaderElector>(ca.get(), Election("a", &SystemClock()), track);
  auto b = std::make_unique<LeaderElector>(cb.get(), Election("b", &SystemClock()), track);
  a->Start();
  b->Start();
  ASSERT_TRUE(WaitUntil([&] { return a->IsLeader() || b->IsLeader(); }, 30s));
  LeaderElector* leader = a->IsLeader() ? a.get() : b.get();
  LeaderElector* follower = leader == a.get() ? b.get() : a.get();
  // For a while, exactly one leads.
  auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_FALSE(a->IsLeader() && b->IsLeader());
    std::this_thread::yield();
  }
  EXPECT_TRUE(leader->IsLeader());

  // The leader's renewals start failing (its token is revoked): it stops leading after the
  // renew deadline, and the other takes over once the lease expires.
  std::string follower_token = follower == a.get() ? "token-a-0123456" : "token-b-0123456";
  ASSERT_TRUE(server_.SetTokens({follower_token}));
  EXPECT_TRUE(WaitUntil([&] { return follower->IsLeader(); }, 30s));
  EXPECT_FALSE(leader->IsLeader());
  EXPECT_FALSE(overlap.load());

  // Stopping with release hands over at once: Stop() gives the Lease back (no holder), so the
  // other candidate takes it at its next try rather than after the lease expires.
  ASSERT_TRUE(server_.SetTokens({"token-a-0123456", "token-b-0123456"}));
  follower->Stop();
  EXPECT_FALSE(follower->IsLeader());
  auto lease = ca->Get(kLeases, "bao-system", "bao-backup-operator");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  const std::string holder = (*lease)["spec"].value("holderIdentity", "");
  const std::string next = leader == a.get() ? "a" : "b";
  EXPECT_TRUE(holder.empty() || holder == next) << holder;
  EXPECT_TRUE(WaitUntil([&] { return leader->IsLeader(); }, 30s));
  EXPECT_FALSE(overlap.load());
  a->Stop();
  b->Stop();
  EXPECT_EQ(leaders.load(), 0);
}

}  // namespace
}  // namespace bao::k8s
