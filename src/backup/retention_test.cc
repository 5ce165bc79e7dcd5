#include "backup/retention.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "backup/naming.h"
#include "backup/prune.h"
#include "crypto/crypto.h"
#include "snapshot/testing/archive_builder.h"
#include "storage/file_store.h"

namespace bao::backup {
namespace {

using std::chrono::hours;

TimePoint At(const std::string& rfc) {
  return *ParseRfc3339(rfc);
}

ParsedKey Backup(const std::string& rfc, const std::string& id = "0000000a") {
  ParsedKey k;
  k.time = At(rfc);
  k.id = id;
  k.key = "ns/c/" + rfc + "-" + id + ".snap";
  return k;
}

std::vector<std::string> Kept(const std::vector<RetentionDecision>& plan) {
  std::vector<std::string> out;
  for (const auto& d : plan) {
    if (d.keep) out.push_back(FormatRfc3339(d.backup.time));
  }
  return out;
}

struct Case {
  std::string name;
  RetentionPolicy policy;
  std::vector<std::string> backups;
  std::vector<std::string> kept;  // newest first
};

TEST(RetentionTest, Table) {
  const TimePoint now = At("2026-03-10T12:00:00Z");
  auto policy = [](int64_t count, int64_t age_hours, int d = 0, int w = 0, int m = 0) {
    RetentionPolicy p;
    p.max_count = count;
    p.max_age = hours(age_hours);
    p.keep_daily = d;
    p.keep_weekly = w;
    p.keep_monthly = m;
    return p;
  };
  std::vector<std::string> daily = {"2026-03-10T03:00:00Z", "2026-03-09T03:00:00Z",
                                    "2026-03-08T03:00:00Z", "2026-03-07T03:00:00Z",
                                    "2026-03-06T03:00:00Z"};
  std::vector<Case> cases = {
      {"empty policy keeps all", policy(0, 0), daily, daily},
      {"no backups", policy(3, 0), {}, {}},
      {"maxCount", policy(2, 0), daily, {daily[0], daily[1]}},
      {"maxCount larger than set", policy(10, 0), daily, daily},
      {"maxAge", policy(0, 60), daily, {daily[0], daily[1], daily[2]}},
      {"maxAge and maxCount both apply", policy(2, 60), daily, {daily[0], daily[1]}},
      {"maxAge tighter than maxCount", policy(4, 36), daily, {daily[0], daily[1]}},
      {"newest survives maxAge",
       policy(0, 1),
       {"2026-01-01T00:00:00Z", "2025-12-01T00:00:00Z"},
       {"2026-01-01T00:00:00Z"}},
      {"keepDaily alone",
       policy(0, 0, 2),
       {"2026-03-10T09:00:00Z", "2026-03-10T03:00:00Z", "2026-03-09T23:00:00Z",
        "2026-03-09T01:00:00Z", "2026-03-08T05:00:00Z"},
       {"2026-03-10T09:00:00Z", "2026-03-09T23:00:00Z"}},
      {"keepDaily counts days that have backups",
       policy(0, 0, 2),
       {"2026-03-10T03:00:00Z", "2026-03-01T03:00:00Z", "2026-02-01T03:00:00Z"},
       {"2026-03-10T03:00:00Z", "2026-03-01T03:00:00Z"}},
      {"keepWeekly uses ISO weeks (Monday start)",
       policy(0, 0, 0, 2),
       {"2026-03-09T01:00:00Z" /* Mon */, "2026-03-08T23:00:00Z" /* Sun */,
        "2026-03-02T00:00:00Z" /* Mon */, "2026-03-01T00:00:00Z" /* Sun */},
       {"2026-03-09T01:00:00Z", "2026-03-08T23:00:00Z"}},
      {"keepMonthly",
       policy(0, 0, 0, 0, 3),
       {"2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02-28T00:00:00Z",
        "2026-01-31T00:00:00Z", "2025-12-31T00:00:00Z"},
       {"2026-03-02T00:00:00Z", "2026-02-28T00:00:00Z", "2026-01-31T00:00:00Z"}},
      {"calendar rule keeps beyond maxCount",
       policy(1, 0, 0, 0, 2),
       {"2026-03-05T00:00:00Z", "2026-03-04T00:00:00Z", "2026-02-10T00:00:00Z"},
       {"2026-03-05T00:00:00Z", "2026-02-10T00:00:00Z"}},
      {"count and calendar combine",
       policy(2, 0, 1, 0, 0),
       {"2026-03-10T05:00:00Z", "2026-03-10T04:00:00Z", "2026-03-10T03:00:00Z"},
       {"2026-03-10T05:00:00Z", "2026-03-10T04:00:00Z"}},
  };
  for (const Case& c : cases) {
    std::vector<ParsedKey> backups;
    for (const std::string& t : c.backups) backups.push_back(Backup(t));
    EXPECT_EQ(Kept(PlanRetention(backups, c.policy, now)), c.kept) << c.name;
  }
}

// A crash between an upload and its checksum left the newest object without one; maxCount 1
// kept it as "the newest" and deleted the last verifiable backup.
// Found by fuzz/retention.cc: the age of a backup named as taken in 1700 overflowed the
// TimePoint's nanoseconds (undefined behaviour; it could come out as not too old).
TEST(RetentionTest, AgesOfKeysFromLongAgoDoNotOverflow) {
  RetentionPolicy p;
  p.max_age = hours(96);
  std::vector<RetentionDecision> plan =
      PlanRetention({Backup("2026-01-30T03:00:00Z"), Backup("1700-01-30T03:00:00Z", "0000000b")}, p,
                    At("2026-01-31T03:00:00Z"), {"ns/c/1700-01-30T03:00:00Z-0000000b.snap"});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_TRUE(plan[0].keep);
  EXPECT_FALSE(plan[1].keep) << plan[1].reason;
}

TEST(RetentionTest, OnlyVerifiableBackupsCountTowardWhatIsKept) {
  std::vector<ParsedKey> backups = {Backup("2026-03-10T03:00:00Z", "00000003"),
                                    Backup("2026-03-09T03:00:00Z", "00000002"),
                                    Backup("2026-03-08T03:00:00Z", "00000001")};
  std::set<std::string> unverifiable = {backups[0].key};
  TimePoint now = At("2026-03-11T00:00:00Z");
  RetentionPolicy count;
  count.max_count = 1;
  auto plan = PlanRetention(backups, count, now, unverifiable);
  EXPECT_EQ(Kept(plan), (std::vector<std::string>{"2026-03-10T03:00:00Z", "2026-03-09T03:00:00Z"}));
  EXPECT_EQ(plan[0].reason, "no recorded checksum: not counted");
  EXPECT_EQ(plan[1].reason, "newest backup");
  RetentionPolicy daily;
  daily.keep_daily = 1;
  daily.max_count = 1;
  EXPECT_EQ(Kept(PlanRetention(backups, daily, now, unverifiable)),
            (std::vector<std::string>{"2026-03-10T03:00:00Z", "2026-03-09T03:00:00Z"}));
  RetentionPolicy age;
  age.max_age = std::chrono::hours(12);
  EXPECT_EQ(Kept(PlanRetention(backups, age, At("2026-03-12T00:00:00Z"), unverifiable)),
            (std::vector<std::string>{"2026-03-09T03:00:00Z"}))
      << "an old unverifiable object goes by age; the newest verifiable one always stays";
}

TEST(RetentionTest, TiesAreBrokenByKeyDeterministically) {
  std::vector<ParsedKey> backups = {Backup("2026-03-10T03:00:00Z", "0000000a"),
                                    Backup("2026-03-10T03:00:00Z", "0000000b"),
                                    Backup("2026-03-10T03:00:00Z", "0000000c")};
  RetentionPolicy p;
  p.max_count = 1;
  for (int round = 0; round < 3; ++round) {
    std::rotate(backups.begin(), backups.begin() + 1, backups.end());
    auto plan = PlanRetention(backups, p, At("2026-03-11T00:00:00Z"));
    ASSERT_EQ(plan.size(), 3u);
    EXPECT_TRUE(plan[0].keep);
    EXPECT_EQ(plan[0].backup.id, "0000000c");
    EXPECT_FALSE(plan[1].keep);
    EXPECT_FALSE(plan[2].keep);
  }
}

// The recovery point of the last upgrade survives whatever the count, age and calendar rules
// say; older pre-upgrade backups are ordinary backups. Only a verifiable one counts.
TEST(RetentionTest, TheNewestPreUpgradeBackupIsAlwaysKept) {
  auto pre = [](const std::string& rfc, const std::string& id) {
    ParsedKey k = Backup(rfc, id);
    k.file_prefix = kPreUpgradePrefix;
    k.key = "ns/c/pre-upgrade-" + rfc + "-" + id + ".snap";
    return k;
  };
  std::vector<ParsedKey> backups = {
      Backup("2026-03-10T03:00:00Z", "00000005"), Backup("2026-03-09T03:00:00Z", "00000004"),
      pre("2026-03-08T12:00:00Z", "00000003"),    Backup("2026-03-08T03:00:00Z", "00000002"),
      pre("2026-02-01T12:00:00Z", "00000001"),
  };
  const TimePoint now = At("2026-03-10T12:00:00Z");
  RetentionPolicy count;
  count.max_count = 1;
  auto plan = PlanRetention(backups, count, now);
  EXPECT_EQ(Kept(plan), (std::vector<std::string>{"2026-03-10T03:00:00Z", "2026-03-08T12:00:00Z"}));
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(plan[2].reason, "newest pre-upgrade backup");
  EXPECT_FALSE(plan[4].keep) << "an older pre-upgrade backup goes like any other";

  RetentionPolicy age;
  age.max_age = std::chrono::hours(1);
  EXPECT_EQ(Kept(PlanRetention(backups, age, now)),
            (std::vector<std::string>{"2026-03-10T03:00:00Z", "2026-03-08T12:00:00Z"}));
  RetentionPolicy daily;
  daily.keep_daily = 1;
  EXPECT_EQ(Kept(PlanRetention(backups, daily, now)),
            (std::vector<std::string>{"2026-03-10T03:00:00Z", "2026-03-08T12:00:00Z"}));
  // Within the limits it is kept for the ordinary reason (and counts toward maxCount).
  RetentionPolicy three;
  three.max_count = 3;
  plan = PlanRetention(backups, three, now);
  EXPECT_EQ(Kept(plan), (std::vector<std::string>{"2026-03-10T03:00:00Z", "2026-03-09T03:00:00Z",
                                                  "2026-03-08T12:00:00Z"}));
  EXPECT_EQ(plan[2].reason, "within maxCount and maxAge");
  // The newest pre-upgrade object without a recorded checksum is no recovery point: the older,
  // verifiable one is kept instead.
  plan = PlanRetention(backups, count, now, {backups[2].key});
  EXPECT_EQ(Kept(plan), (std::vector<std::string>{"2026-03-10T03:00:00Z", "2026-03-08T12:00:00Z",
                                                  "2026-02-01T12:00:00Z"}));
  EXPECT_EQ(plan[4].reason, "newest pre-upgrade backup");
  // Another file prefix is an ordinary backup.
  ParsedKey other = Backup("2026-03-07T03:00:00Z", "00000009");
  other.file_prefix = "pre-";
  EXPECT_EQ(Kept(PlanRetention({backups[0], other}, count, now)),
            (std::vector<std::string>{"2026-03-10T03:00:00Z"}));
}

class PruneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("bao-prune-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);  // an existing, empty backup directory
    store_ = std::move(storage::OpenFileStore(root_.string()).value());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  // A valid snapshot archive under `key`, with its checksum recorded.
  void Put(const std::string& key) {
    std::string archive = snapshot::testing::ValidArchive(1000, std::hash<std::string>()(key));
    auto w = std::move(store_->NewWriter(Context(), key).value());
    ASSERT_TRUE(w->Append(Context(), archive).ok());
    ASSERT_TRUE(w->Commit(Context(), {archive.size(), crypto::Sha256Hex(archive)}).ok());
  }
  // Replaces the bytes of `key` behind the store's back (bit rot, tampering): the recorded
  // checksum stays.
  void Corrupt(const std::string& key) {
    std::ofstream(root_ / key, std::ios::binary | std::ios::trunc) << "not what was recorded";
  }
  bool Exists(const std::string& key) { return store_->Stat(Context(), key).ok(); }

  std::filesystem::path root_;
  std::unique_ptr<storage::Store> store_;
  Context ctx_;
};

TEST_F(PruneTest, OnlyThisClustersBackupsAreCandidates) {
  Put("p/ns/c/2026-03-01T00-00-00Z-00000001.snap");
  Put("p/ns/c/2026-03-02T00-00-00Z-00000002.snap");
  Put("p/ns/c/2026-03-03T00-00-00Z-00000003.snap");
  Put("p/ns/c/notes.txt");
  Put("p/ns/c/2020-01-01T00-00-00Z-zzzzzzzz.snap");
  Put("p/ns/other/2020-01-01T00-00-00Z-00000004.snap");
  Put("p/ns/c-2/2020-01-01T00-00-00Z-00000005.snap");
  RetentionPolicy policy;
  policy.max_count = 1;
  PruneResult dry;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "p", "ns", "c", policy, At("2026-03-04T00:00:00Z"), true, &dry)
          .ok());
  EXPECT_TRUE(dry.deleted.empty());
  EXPECT_TRUE(Exists("p/ns/c/2026-03-01T00-00-00Z-00000001.snap"));
  ASSERT_EQ(dry.plan.size(), 3u);

  PruneResult real;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "p", "ns", "c", policy, At("2026-03-04T00:00:00Z"), false, &real)
          .ok());
  EXPECT_EQ(real.deleted.size(), 2u);
  EXPECT_TRUE(Exists("p/ns/c/2026-03-03T00-00-00Z-00000003.snap"));
  EXPECT_FALSE(Exists("p/ns/c/2026-03-01T00-00-00Z-00000001.snap"));
  for (const char* foreign : {"p/ns/c/notes.txt", "p/ns/c/2020-01-01T00-00-00Z-zzzzzzzz.snap",
                              "p/ns/other/2020-01-01T00-00-00Z-00000004.snap",
                              "p/ns/c-2/2020-01-01T00-00-00Z-00000005.snap"}) {
    EXPECT_TRUE(Exists(foreign)) << foreign;
  }
}

TEST_F(PruneTest, EmptyPrefixAndNoBackups) {
  RetentionPolicy policy;
  policy.max_count = 1;
  PruneResult r;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "", "ns", "c", policy, At("2026-03-04T00:00:00Z"), false, &r).ok());
  EXPECT_TRUE(r.plan.empty());
  Put("ns/c/2026-03-01T00-00-00Z-00000001.snap");
  Put("ns/c/2026-03-02T00-00-00Z-00000002.snap");
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "", "ns", "c", policy, At("2026-03-04T00:00:00Z"), false, &r).ok());
  EXPECT_EQ(r.deleted, std::vector<std::string>{"ns/c/2026-03-01T00-00-00Z-00000001.snap"});
}

// The result JSON is what the backup Job leaves as its termination message (cut at 4096 bytes
// by the kubelet): counts, never a list as long as the store's listing.
TEST_F(PruneTest, ResultJsonIsCountsWhateverTheNumberOfBackups) {
  constexpr int kBackups = 3000;
  TimePoint start = At("2020-01-01T00:00:00Z");
  // Written directly, as the file store lays them out (Put() fsyncs: too slow for thousands).
  std::filesystem::create_directories(root_ / "ns/c");
  const std::string archive = snapshot::testing::ValidArchive(100, 1);
  const std::string sha256 = crypto::Sha256Hex(archive);
  for (int i = 0; i < kBackups; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "%08x", i);
    std::string name = KeyTimestamp(start + std::chrono::minutes(i)) + "-" + id + ".snap";
    std::ofstream(root_ / "ns/c" / name, std::ios::binary) << archive;
    std::ofstream(root_ / "ns/c" / (name + ".sha256")) << sha256 << "  " << name << "\n";
  }
  RetentionPolicy policy;
  policy.max_count = 2;
  PruneResult dry;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "", "ns", "c", policy, At("2026-03-04T00:00:00Z"), true, &dry)
          .ok());
  nlohmann::json d = dry.ToJson();
  EXPECT_LT(d.dump().size(), 1024u) << d.dump().substr(0, 500);
  EXPECT_EQ(d["dryRun"], true);
  EXPECT_EQ(d["backups"], kBackups);
  EXPECT_EQ(d["kept"], 2);
  EXPECT_EQ(d["toDelete"], kBackups - 2);
  EXPECT_EQ(d["deleted"], 0);

  PruneResult real;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "", "ns", "c", policy, At("2026-03-04T00:00:00Z"), false, &real)
          .ok());
  EXPECT_EQ(real.deleted.size(), static_cast<size_t>(kBackups - 2));
  nlohmann::json j = real.ToJson();
  EXPECT_LT(j.dump().size(), 1024u) << j.dump().substr(0, 500);
  EXPECT_EQ(j["dryRun"], false);
  EXPECT_EQ(j["deleted"], kBackups - 2);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["kept"], 2);
  EXPECT_EQ(j["unverifiable"], 0);
  EXPECT_EQ(j["oldestKept"], "ns/c/2020-01-03T01-58-00Z-00000bb6.snap");
}

// The executor's prune after each backup: the pre-upgrade object in the store survives a
// maxCount of 1 (the keys as the executor names them).
TEST_F(PruneTest, KeepsTheNewestPreUpgradeBackupInTheStore) {
  Put("p/ns/c/pre-upgrade-2026-03-01T00-00-00Z-00000001.snap");
  Put("p/ns/c/pre-upgrade-2026-03-02T00-00-00Z-00000002.snap");
  Put("p/ns/c/2026-03-03T00-00-00Z-00000003.snap");
  Put("p/ns/c/2026-03-04T00-00-00Z-00000004.snap");
  RetentionPolicy policy;
  policy.max_count = 1;
  PruneResult r;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "p", "ns", "c", policy, At("2026-03-05T00:00:00Z"), false, &r)
          .ok());
  EXPECT_TRUE(Exists("p/ns/c/2026-03-04T00-00-00Z-00000004.snap"));
  EXPECT_TRUE(Exists("p/ns/c/pre-upgrade-2026-03-02T00-00-00Z-00000002.snap"));
  EXPECT_FALSE(Exists("p/ns/c/pre-upgrade-2026-03-01T00-00-00Z-00000001.snap"));
  EXPECT_FALSE(Exists("p/ns/c/2026-03-03T00-00-00Z-00000003.snap"));
  EXPECT_EQ(r.ToJson()["kept"], 2);
  EXPECT_EQ(r.ToJson()["oldestKept"], "p/ns/c/pre-upgrade-2026-03-02T00-00-00Z-00000002.snap");
}

// A recorded checksum is not proof: before deleting, the newest kept backup is read. Newer
// backups whose bytes no longer match (here the two newest) do not count, so max_count 1 keeps
// the newest one that verifies, and deletes only what is older than it.
TEST_F(PruneTest, NeverDeletesTheNewestBackupThatVerifiesInFavourOfCorruptNewerOnes) {
  Put("p/ns/c/2026-03-01T00-00-00Z-00000001.snap");
  Put("p/ns/c/2026-03-02T00-00-00Z-00000002.snap");
  Put("p/ns/c/2026-03-03T00-00-00Z-00000003.snap");
  Put("p/ns/c/2026-03-04T00-00-00Z-00000004.snap");
  Corrupt("p/ns/c/2026-03-03T00-00-00Z-00000003.snap");
  Corrupt("p/ns/c/2026-03-04T00-00-00Z-00000004.snap");
  RetentionPolicy policy;
  policy.max_count = 1;
  PruneResult r;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "p", "ns", "c", policy, At("2026-03-05T00:00:00Z"), false, &r)
          .ok());
  EXPECT_EQ(r.verified, "p/ns/c/2026-03-02T00-00-00Z-00000002.snap");
  EXPECT_EQ(r.deleted, std::vector<std::string>{"p/ns/c/2026-03-01T00-00-00Z-00000001.snap"});
  EXPECT_TRUE(Exists("p/ns/c/2026-03-02T00-00-00Z-00000002.snap"));
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["unverifiable"], 2) << j;
  EXPECT_EQ(j["verified"], "p/ns/c/2026-03-02T00-00-00Z-00000002.snap") << j;

  // Nothing to delete: nothing is read.
  PruneResult again;
  ASSERT_TRUE(
      Prune(ctx_, store_.get(), "p", "ns", "c", policy, At("2026-03-05T00:00:00Z"), false, &again)
          .ok());
  EXPECT_TRUE(again.deleted.empty());
  EXPECT_EQ(again.ToJson()["verified"], nullptr);
}

// The newest kept backup cannot be read (not a verification failure): nothing is deleted.
class FailingReadStore : public storage::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status Read(const Context&, const std::string&, uint64_t, const storage::ByteSink&) override {
    return Unavailable("the disk is offline").WithStage(Stage::kStorage);
  }
};

TEST_F(PruneTest, AnUnreadableNewestBackupStopsThePruneBeforeAnyDelete) {
  Put("p/ns/c/2026-03-01T00-00-00Z-00000001.snap");
  Put("p/ns/c/2026-03-02T00-00-00Z-00000002.snap");
  FailingReadStore failing(store_.get());
  RetentionPolicy policy;
  policy.max_count = 1;
  PruneResult r;
  Status s = Prune(ctx_, &failing, "p", "ns", "c", policy, At("2026-03-05T00:00:00Z"), false, &r);
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_EQ(s.stage(), Stage::kStorage);
  EXPECT_TRUE(r.deleted.empty());
  EXPECT_TRUE(Exists("p/ns/c/2026-03-01T00-00-00Z-00000001.snap"));
}

class FailingDeleteStore : public storage::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status Delete(const Context& ctx, const std::string& key) override {
    if (key.find("00000001") != std::string::npos) return Unavailable("disk on fire");
    return ForwardingStore::Delete(ctx, key);
  }
};

TEST_F(PruneTest, AFailedDeleteIsReportedAndTheRestContinue) {
  Put("ns/c/2026-03-01T00-00-00Z-00000001.snap");
  Put("ns/c/2026-03-02T00-00-00Z-00000002.snap");
  Put("ns/c/2026-03-03T00-00-00Z-00000003.snap");
  FailingDeleteStore failing(store_.get());
  RetentionPolicy policy;
  policy.max_count = 1;
  PruneResult r;
  Status s = Prune(ctx_, &failing, "", "ns", "c", policy, At("2026-03-04T00:00:00Z"), false, &r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("disk on fire"), std::string::npos);
  EXPECT_EQ(r.deleted, std::vector<std::string>{"ns/c/2026-03-02T00-00-00Z-00000002.snap"});
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_TRUE(Exists("ns/c/2026-03-01T00-00-00Z-00000001.snap"));
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["deleted"], 1) << j;
  EXPECT_EQ(j["failed"], 1) << j;
  EXPECT_EQ(j["toDelete"], 2) << j;
}

// A store whose backup 00000001 is under an object lock until `until`: Delete() refuses it as
// a locked object does (Reason::kLocked with the date).
class LockingStore : public storage::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Status Delete(const Context& ctx, const std::string& key) override {
    if (key.find("00000001") != std::string::npos && locked) {
      return Error(Code::kFailedPrecondition, Reason::kLocked, key + " is locked")
          .WithStage(Stage::kStorage)
          .WithPayload("lockedUntil", "2026-04-01T00:00:00Z");
    }
    return ForwardingStore::Delete(ctx, key);
  }
  bool locked = true;
};

// A backup still locked is skipped, reported with its date and never fails the run; once its
// lock is gone, the next prune deletes it.
TEST_F(PruneTest, ALockedBackupIsSkippedAndReportedThenDeletedLater) {
  Put("ns/c/2026-03-01T00-00-00Z-00000001.snap");
  Put("ns/c/2026-03-02T00-00-00Z-00000002.snap");
  Put("ns/c/2026-03-03T00-00-00Z-00000003.snap");
  LockingStore locking(store_.get());
  RetentionPolicy policy;
  policy.max_count = 1;
  PruneResult r;
  Status s = Prune(ctx_, &locking, "", "ns", "c", policy, At("2026-03-04T00:00:00Z"), false, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(r.deleted, std::vector<std::string>{"ns/c/2026-03-02T00-00-00Z-00000002.snap"});
  EXPECT_TRUE(r.failed.empty());
  ASSERT_EQ(r.locked.size(), 1u);
  EXPECT_EQ(r.locked[0].key, "ns/c/2026-03-01T00-00-00Z-00000001.snap");
  EXPECT_EQ(r.locked[0].until, "2026-04-01T00:00:00Z");
  EXPECT_TRUE(Exists("ns/c/2026-03-01T00-00-00Z-00000001.snap"));
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["locked"], 1) << j;
  EXPECT_EQ(j["failed"], 0) << j;
  EXPECT_EQ(
      j["lockedKeys"],
      nlohmann::json::parse(
          R"([{"key":"ns/c/2026-03-01T00-00-00Z-00000001.snap","until":"2026-04-01T00:00:00Z"}])"))
      << j;

  locking.locked = false;  // the retention ended
  PruneResult later;
  ASSERT_TRUE(
      Prune(ctx_, &locking, "", "ns", "c", policy, At("2026-04-02T00:00:00Z"), false, &later).ok());
  EXPECT_EQ(later.deleted, std::vector<std::string>{"ns/c/2026-03-01T00-00-00Z-00000001.snap"});
  EXPECT_TRUE(later.locked.empty());
  EXPECT_FALSE(later.ToJson().contains("lockedKeys"));
  EXPECT_FALSE(Exists("ns/c/2026-03-01T00-00-00Z-00000001.snap"));
}

// Prune's cleanup: this cluster's leftovers past the threshold (none in a dry run), counted in
// the result; a failing cleanup is reported like a failed delete, after the retention ran.
class CleanupSpyStore : public storage::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::vector<storage::Leftover>> CleanUpLeftovers(const Context& ctx,
                                                          const std::string& prefix,
                                                          TimePoint older_than) override {
    prefixes.push_back(prefix);
    thresholds.push_back(older_than);
    if (fail) return Unavailable("listing uploads failed").WithReason(Reason::kServerError);
    return ForwardingStore::CleanUpLeftovers(ctx, prefix, older_than);
  }
  bool fail = false;
  std::vector<std::string> prefixes;
  std::vector<TimePoint> thresholds;
};

TEST_F(PruneTest, CleansUpThisClustersLeftoversAndReportsAFailure) {
  Put("p/ns/c/2026-03-01T00-00-00Z-00000001.snap");
  Put("p/ns/c/2026-03-02T00-00-00Z-00000002.snap");
  std::ofstream(root_ / "p/ns/c/.2026-03-03T00-00-00Z-00000003.snap.partial-0011") << "crash";
  std::ofstream(root_ / "p/ns/c/2026-03-03T00-00-00Z-00000004.snap.sha256") << "orphan";
  std::filesystem::create_directories(root_ / "p/ns/d");
  std::ofstream(root_ / "p/ns/d/.x.snap.partial-0011") << "another cluster";
  CleanupSpyStore spy(store_.get());
  RetentionPolicy policy;
  policy.max_count = 5;
  const TimePoint now = SystemClock().Now();

  PruneResult r;
  ASSERT_TRUE(Prune(ctx_, &spy, "p", "ns", "c", policy, now, /*dry_run=*/true, &r).ok());
  EXPECT_TRUE(spy.prefixes.empty()) << "a dry run removes nothing";

  // Fresh leftovers are younger than the default threshold: kept.
  ASSERT_TRUE(Prune(ctx_, &spy, "p", "ns", "c", policy, now, false, &r).ok());
  ASSERT_EQ(spy.prefixes, std::vector<std::string>{"p/ns/c/"});
  EXPECT_EQ(spy.thresholds[0], now - std::chrono::hours(24));
  EXPECT_EQ(r.ToJson()["cleanedUp"], 0);

  ASSERT_TRUE(Prune(ctx_, &spy, "p", "ns", "c", policy, now, false, &r, Duration(0)).ok());
  EXPECT_EQ(spy.thresholds[1], TimePoint::max());
  EXPECT_EQ(r.ToJson()["cleanedUp"], 2) << r.ToJson();
  EXPECT_FALSE(r.ToJson().contains("cleanupError"));
  EXPECT_FALSE(std::filesystem::exists(root_ / "p/ns/c/2026-03-03T00-00-00Z-00000004.snap.sha256"));
  EXPECT_TRUE(std::filesystem::exists(root_ / "p/ns/d/.x.snap.partial-0011"));
  EXPECT_TRUE(Exists("p/ns/c/2026-03-01T00-00-00Z-00000001.snap"));

  spy.fail = true;
  policy.max_count = 1;
  Status s = Prune(ctx_, &spy, "p", "ns", "c", policy, now, false, &r, Duration(0));
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_EQ(s.stage(), Stage::kStorage);
  EXPECT_EQ(s.reason(), Reason::kServerError);
  EXPECT_EQ(r.deleted.size(), 1u) << "the retention still ran";
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["cleanedUp"], 0);
  EXPECT_TRUE(j.contains("cleanupError")) << j;
}

}  // namespace
}  // namespace bao::backup
