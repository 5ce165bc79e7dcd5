#include "backup/restore.h"

#include <gtest/gtest.h>

namespace bao::backup {
namespace {

using openbao::NodeState;

NodeState Node(const std::string& address, long health, const std::string& cluster_id,
               uint64_t index = 0, bool leader_answered = true) {
  NodeState n;
  n.address = address;
  n.reachable = true;
  n.health_status = health;
  n.sealed = health == 503;
  n.standby = health == 429;
  n.cluster_id = n.sealed ? "" : cluster_id;
  n.leader_answered = leader_answered && !n.sealed;
  n.is_self = health == 200;
  n.applied_index = index;
  return n;
}

NodeState Unreachable(const std::string& address) {
  NodeState n;
  n.address = address;
  n.error = "timed out";
  return n;
}

TEST(RestoreSettled, WaitsForTheRaftIndexToMovePastTheOneBeforeThePost) {
  NodeState before = Node("a", 200, "id-1", 105);
  EXPECT_FALSE(RestoreSettled(before, Node("a", 200, "id-1", 105)));       // not applied yet
  EXPECT_FALSE(RestoreSettled(before, Node("a", 200, "id-1", 0, false)));  // sys/leader blocked
  EXPECT_FALSE(RestoreSettled(before, Unreachable("a")));
  EXPECT_TRUE(RestoreSettled(before, Node("a", 200, "id-1", 110)));
  EXPECT_TRUE(RestoreSettled(before, Node("a", 503, "")));  // sealed itself
}

TEST(JudgeRestore, TellsAppliedSealedStandbyAndUnsettledApart) {
  NodeState before = Node("a", 200, "id-1", 105);
  NodeState applied = Node("a", 200, "id-1", 110);
  NodeState sealed = Node("a", 503, "");
  std::vector<NodeState> others_sealed = {sealed, Node("b", 503, ""), Node("c", 503, "")};
  std::vector<NodeState> other_active = {sealed, Node("b", 200, "id-1"), Node("c", 429, "id-1")};

  EXPECT_EQ(JudgeRestore(before, applied, true, {applied}), RestoreOutcome::kApplied);
  EXPECT_EQ(JudgeRestore(before, sealed, true, others_sealed), RestoreOutcome::kSealed);
  EXPECT_EQ(JudgeRestore(before, sealed, true, other_active), RestoreOutcome::kReachedStandby);
  EXPECT_EQ(JudgeRestore(before, Unreachable("a"), false, {}), RestoreOutcome::kNotSettled);
  // Another node active under a different cluster id is not the old cluster: sealed, not standby.
  EXPECT_EQ(JudgeRestore(before, sealed, true, {sealed, Node("b", 200, "id-2")}),
            RestoreOutcome::kSealed);
}

TEST(RestoreResult, JsonCarriesTheClusterStateAfterTheRestore) {
  RestoreResult r;
  r.key = "ns/c/2026-01-01T00-00-00Z-00000001.snap";
  r.settled = true;
  r.sealed = true;
  r.cluster_id_before = "id-b";
  r.nodes = {Node("http://a", 503, ""), Unreachable("http://b")};
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["sealed"], true);
  EXPECT_EQ(j["settled"], true);
  EXPECT_EQ(j["clusterIdBefore"], "id-b");
  EXPECT_TRUE(j["clusterIdAfter"].is_null());
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][0]["state"], "sealed");
  EXPECT_EQ(j["nodes"][1]["state"], "unreachable: timed out");
  r.sealed = false;
  r.cluster_id_after = "id-b";
  EXPECT_EQ(r.ToJson()["clusterIdAfter"], "id-b");
}

}  // namespace
}  // namespace bao::backup
