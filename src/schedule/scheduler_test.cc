#include "schedule/scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "common/files.h"
#include "common/numbers.h"
#include "schedule/metrics.h"

namespace bao::schedule {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

TimePoint T(const char* rfc3339) {
  return *ParseRfc3339(rfc3339);
}

// A fake backup: counts calls and concurrency, optionally blocks until released, fails when
// told to. Its fields are shared with the attempts' threads: the test reads them with Read()
// and sets them with Set(), both under the lock.
struct FakeBackups {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  int in_flight = 0;
  int max_in_flight = 0;
  int retains = 0;
  bool block = false;
  bool fail = false;
  std::vector<std::string> clusters;

  AttemptHooks Hooks() {
    AttemptHooks h;
    h.backup = [this](const Context&, const ClusterConfig& c) -> Result<backup::BackupResult> {
      std::unique_lock<std::mutex> lock(mu);
      ++calls;
      clusters.push_back(c.Key());
      max_in_flight = std::max(max_in_flight, ++in_flight);
      cv.notify_all();
      cv.wait(lock, [this] { return !block; });
      --in_flight;
      if (fail) return Unauthenticated("permission denied").WithStage(Stage::kAuth);
      backup::BackupResult r;
      r.key = "default/" + c.name + "/backup-" + std::to_string(calls) + ".snap";
      r.size = 1234;
      r.duration = Duration(45000);
      return r;
    };
    h.retain = [this](const Context&, const ClusterConfig&, TimePoint) {
      std::lock_guard<std::mutex> lock(mu);
      ++retains;
      return Status::Ok();
    };
    return h;
  }
  template <typename T>
  T Read(const T& field) {
    std::lock_guard<std::mutex> lock(mu);
    return field;
  }
  void Set(bool* field, bool value) {
    std::lock_guard<std::mutex> lock(mu);
    *field = value;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    block = false;
    cv.notify_all();
  }
  void WaitInFlight() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return in_flight > 0; });
  }
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sched-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  SchedulerConfig Config(const std::string& yaml_schedule, int max_count = 0) {
    nlohmann::json j = {
        {"stateFile", dir_ + "/state.json"},
        {"startingDeadlineSeconds", 300},
        {"shutdownGracePeriodSeconds", 0},
        {"clusters",
         {{{"name", "prod"},
           {"openbao", {{"addresses", {"http://127.0.0.1:1"}}, {"token", "test-token-123"}}},
           {"backup",
            {{"schedule", yaml_schedule},
             {"target", {{"provider", "file"}, {"bucket", dir_ + "/store"}}},
             {"retention", {{"maxCount", max_count}}}}}}}}};
    Result<SchedulerConfig> cfg = ParseSchedulerConfig(j, dir_ + "/config.yaml");
    EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
    return *cfg;
  }

  std::string dir_;
  FakeBackups fake_;
};

TEST_F(SchedulerTest, RunsEachSlotAtMostOnce) {
  ManualClock clock(T("2026-01-31T02:59:30Z"));
  Scheduler s(Config("0 3 * * *"), &clock, fake_.Hooks());
  ASSERT_TRUE(s.Start().ok());
  s.Tick(clock.Now());
  s.WaitIdle();
  EXPECT_EQ(fake_.Read(fake_.calls), 0);
  for (const char* t : {"2026-01-31T03:00:00Z", "2026-01-31T03:00:20Z", "2026-01-31T03:04:00Z"}) {
    clock.Set(T(t));
    s.Tick(clock.Now());
    s.WaitIdle();
  }
  EXPECT_EQ(fake_.Read(fake_.calls), 1);
  ClusterStatus st = s.Snapshot().clusters.at("default/prod");
  EXPECT_EQ(st.last_attempt_scheduled_time, T("2026-01-31T03:00:00Z"));
  EXPECT_EQ(st.next_scheduled_backup, T("2026-02-01T03:00:00Z"));
  EXPECT_EQ(st.last_backup_name, "default/prod/backup-1.snap");
  EXPECT_EQ(st.last_backup_size, 1234u);
  EXPECT_EQ(st.attempts[kOutcomeSuccess], 1u);
  clock.Set(T("2026-02-01T03:00:01Z"));
  s.Tick(clock.Now());
  s.WaitIdle();
  EXPECT_EQ(fake_.Read(fake_.calls), 2);
}

TEST_F(SchedulerTest, DoesNotRunSlotsFromBeforeTheFirstStart) {
  ManualClock clock(T("2026-01-31T03:01:00Z"));
  Scheduler s(Config("0 3 * * *"), &clock, fake_.Hooks());
  ASSERT_TRUE(s.Start().ok());
  s.Tick(clock.Now());
  s.WaitIdle();
  EXPECT_EQ(fake_.Read(fake_.calls), 0);
  EXPECT_EQ(s.Snapshot().clusters.at("default/prod").attempts[kOutcomeMissed], 0u);
}

TEST_F(SchedulerTest, CatchesUpAfterDowntimeWithinTheDeadlineAndMissesBeyond) {
  ManualClock clock(T("2026-01-31T02:50:00Z"));
  {
    Scheduler s(Config("0 3 * * *"), &clock, fake_.Hooks());
    ASSERT_TRUE(s.Start().ok());
    s.Tick(clock.Now());
  }
  // Down over 03:00; back at 03:04 (within 300 s): the slot runs once.
  clock.Set(T("2026-01-31T03:04:00Z"));
  {
    Scheduler s(Config("0 3 * * *"), &clock, fake_.Hooks());
    ASSERT_TRUE(s.Start().ok());
    s.Tick(clock.Now());
    s.WaitIdle();
    s.Tick(clock.Now());
    s.WaitIdle();
  }
  EXPECT_EQ(fake_.Read(fake_.calls), 1);
  // Down over the next two slots, back 10 minutes after the second: both missed.
  clock.Set(T("2026-02-02T03:10:00Z"));
  Scheduler s(Config("0 3 * * *"), &clock, fake_.Hooks());
  ASSERT_TRUE(s.Start().ok());
  s.Tick(clock.Now());
  s.WaitIdle();
  EXPECT_EQ(fake_.Read(fake_.calls), 1);
  ClusterStatus st = s.Snapshot().clusters.at("default/prod");
  EXPECT_EQ(st.attempts[kOutcomeMissed], 2u);
  EXPECT_EQ(st.last_missed_slot, T("2026-02-02T03:00:00Z"));
  EXPECT_EQ(st.last_attempt_scheduled_time, T("2026-01-31T03:00:00Z"));
  EXPECT_EQ(st.next_scheduled_backup, T("2026-02-03T03:00:00Z"));
}

TEST_F(SchedulerTest, NoOverlapForOneCluster) {
  ManualClock clock(T("2026-01-31T02:59:59Z"));
  Scheduler s(Config("* * * * *"), &clock, fake_.Hooks());
  ASSERT_TRUE(s.Start().ok());
  fake_.Set(&fake_.block, true);
  clock.Set(T("2026-01-31T03:00:00Z"));
  s.Tick(clock.Now());
  fake_.WaitInFlight();
  // Two more slots come while the first backup still runs.
  clock.Set(T("2026-01-31T03:01:00Z"));
  s.Tick(clock.Now());
  clock.Set(T("2026-01-31T03:02:10Z"));
  s.Tick(clock.Now());
  EXPECT_TRUE(s.Snapshot().clusters.at("default/prod").running);
  fake_.Release();
  s.WaitIdle();
  EXPECT_EQ(fake_.Read(fake_.calls), 1);
  // Afterwards the newest due slot runs once; the one passed over is missed.
  s.Tick(clock.Now());
  s.WaitIdle();
  EXPECT_EQ(fake_.Read(fake_.calls), 2);
  EXPECT_EQ(fake_.Read(fake_.max_in_flight), 1);
  ClusterStatus st = s.Snapshot().clusters.at("default/prod");
  EXPECT_EQ(st.last_attempt_scheduled_time, T("2026-01-31T03:02:00Z"));
  EXPECT_EQ(st.attempts[kOutcomeMissed], 1u);
  EXPECT_EQ(st.attempts[kOutcomeSuccess], 2u);
}

TEST_F(SchedulerTest, StatusIsPersistedAndReloaded) {
  ManualClock clock(T("2026-01-31T02:59:59Z"));
  {
    Scheduler s(Config("0 3 * * *"), &clock, fake_.Hooks());
    ASSERT_TRUE(s.Start().ok());
    clock.Set(T("2026-01-31T03:00:00Z"));
    s.Tick(clock.Now());
    s.WaitIdle();
  }
  Result<SchedulerState> loaded = LoadState(dir_ + "/state.json");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const ClusterStatus& st = loaded->clusters.at("default/prod");
  EXPECT_EQ(st.last_backup_time, T("2026-01-31T03:00:00Z"));
  EXPECT_EQ(st.last_backup_duration, Duration(45000));
  EXPECT_EQ(st.ToJson()["lastBackupDuration"], "45s");
  EXPECT_EQ(st.ToJson()["lastAttemptScheduledTime"], "2026-01-31T03:00:00Z");
  // A restart in the same minute does not run the slot again.
  Scheduler s(Config("0 3 * * *"), &clock, fake_.Hooks());
  ASSERT_TRUE(s.Start().ok());
  s.Tick(clock.Now());
  s.WaitIdle();
  EXPECT_EQ(fake_.Read(fake_.calls), 1);
  EXPECT_EQ(s.Snapshot().clusters.at("default/prod").last_backup_name,
            "default/prod/backup-1.snap");
}

TEST_F(SchedulerTest, FailuresCountUntilASuccessAndRetentionOnlyAfterSuccess) {
  ManualClock clock(T("2026-01-31T02:59:59Z"));
  Scheduler s(Config("* * * * *", /*max_count=*/3), &clock, fake_.Hooks());
  ASSERT_TRUE(s.Start().ok());
  fake_.Set(&fake_.fail, true);
  for (const char* t : {"2026-01-31T03:00:00Z", "2026-01-31T03:01:00Z"}) {
    clock.Set(T(t));
    s.Tick(clock.Now());
    s.WaitIdle();
  }
  ClusterStatus st = s.Snapshot().clusters.at("default/prod");
  EXPECT_EQ(st.consecutive_failures, 2);
  EXPECT_EQ(st.last_failure_reason, "auth: permission denied");
  EXPECT_EQ(fake_.Read(fake_.retains), 0);
  fake_.Set(&fake_.fail, false);
  clock.Set(T("2026-01-31T03:02:00Z"));
  s.Tick(clock.Now());
  s.WaitIdle();
  st = s.Snapshot().clusters.at("default/prod");
  EXPECT_EQ(st.consecutive_failures, 0);
  EXPECT_EQ(fake_.Read(fake_.retains), 1);
  EXPECT_EQ(st.attempts[kOutcomeFailure], 2u);
  std::string metrics = RenderMetrics(s.Snapshot());
  EXPECT_NE(metrics.find("bao_backup_attempts_total{namespace=\"default\",cluster=\"prod\","
                         "outcome=\"failure\"} 2\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("bao_backup_consecutive_failures{namespace=\"default\",cluster=\"prod\"}"
                         " 0\n"),
            std::string::npos);
}

TEST_F(SchedulerTest, CancellingOneAttemptLeavesTheOthersRunning) {
  ManualClock clock(T("2026-01-31T02:59:59Z"));
  SchedulerConfig cfg = Config("* * * * *");
  cfg.clusters.push_back(cfg.clusters.front());
  cfg.clusters.back().name = "other";
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, bool> cancelled_seen;
  int started = 0;
  std::atomic<bool> release{false};
  AttemptHooks hooks;
  hooks.backup = [&](const Context& ctx, const ClusterConfig& c) -> Result<backup::BackupResult> {
    {
      std::lock_guard<std::mutex> l(mu);
      ++started;
      cv.notify_all();
    }
    while (!ctx.cancelled() && !release) std::this_thread::yield();
    {
      std::lock_guard<std::mutex> l(mu);
      cancelled_seen[c.name] = ctx.cancelled();
    }
    if (ctx.cancelled()) return ctx.Check("uploading");
    backup::BackupResult r;
    r.key = "k";
    return r;
  };
  hooks.retain = [](const Context&, const ClusterConfig&, TimePoint) { return Status::Ok(); };
  Scheduler s(cfg, &clock, hooks);
  ASSERT_TRUE(s.Start().ok());
  clock.Set(T("2026-01-31T03:00:00Z"));
  s.Tick(clock.Now());
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, seconds(30), [&] { return started == 2; }));
  }
  EXPECT_TRUE(s.Cancel("default/prod"));
  EXPECT_FALSE(s.Cancel("default/nonexistent"));
  // Wait (bounded) until the cancelled attempt has ended, then let the other one finish.
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (s.Snapshot().clusters.at("default/prod").running &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_TRUE(s.Snapshot().clusters.at("default/other").running);
  release = true;
  s.WaitIdle();
  SchedulerState st = s.Snapshot();
  EXPECT_EQ(st.clusters.at("default/prod").attempts[kOutcomeCancelled], 1u);
  EXPECT_EQ(st.clusters.at("default/other").attempts[kOutcomeSuccess], 1u);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_TRUE(cancelled_seen["prod"]);
  EXPECT_FALSE(cancelled_seen["other"]);
}

TEST_F(SchedulerTest, ShutdownAbortsARunningAttemptAfterTheGracePeriod) {
  ManualClock clock(T("2026-01-31T02:59:59Z"));
  AttemptHooks hooks;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  hooks.backup = [&](const Context& ctx, const ClusterConfig&) -> Result<backup::BackupResult> {
    {
      std::lock_guard<std::mutex> lock(mu);
      started = true;
    }
    cv.notify_all();
    // A long upload, until cancelled (or, when the cancel never comes, a failure that is not a
    // cancellation, after a minute).
    auto deadline = std::chrono::steady_clock::now() + minutes(1);
    while (!ctx.cancelled() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    if (!ctx.cancelled()) return Internal("never cancelled");
    return ctx.Check("reading the snapshot");
  };
  hooks.retain = [](const Context&, const ClusterConfig&, TimePoint) { return Status::Ok(); };
  Scheduler s(Config("* * * * *"), &clock, hooks);
  ASSERT_TRUE(s.Start().ok());
  clock.Set(T("2026-01-31T03:00:00Z"));
  s.Tick(clock.Now());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, minutes(1), [&] { return started; }));
  }
  s.Shutdown();  // grace 0 s
  ClusterStatus st = s.Snapshot().clusters.at("default/prod");
  EXPECT_EQ(st.attempts[kOutcomeCancelled], 1u);
  EXPECT_EQ(st.consecutive_failures, 0);
  EXPECT_FALSE(st.running);
  // No new work after shutdown.
  clock.Set(T("2026-01-31T03:01:00Z"));
  s.Tick(clock.Now());
  EXPECT_FALSE(s.Snapshot().clusters.at("default/prod").running);
}

TEST(SchedulerConfigTest, RejectsBadConfigsNamingTheField) {
  nlohmann::json base = {
      {"clusters",
       {{{"name", "a"},
         {"openbao", {{"addresses", {"http://x"}}, {"tokenFile", "/t"}}},
         {"backup",
          {{"schedule", "61 * * * *"},
           {"target",
            {{"provider", "file"}, {"bucket", "/tmp/x"}, {"credentialsDir", "/etc/creds"}}}}}}}}};
  Result<SchedulerConfig> r = ParseSchedulerConfig(base, "c.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("clusters[0].backup.schedule"), std::string::npos)
      << r.status().message();
  base["clusters"][0]["backup"]["schedule"] = "@hourly";
  base["clusters"][0]["openbao"].erase("tokenFile");
  r = ParseSchedulerConfig(base, "c.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no way to authenticate"), std::string::npos);
  base["clusters"][0]["backup"]["jwtAuthRole"] = "backup";
  r = ParseSchedulerConfig(base, "c.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state_file, "c.yaml.state.json");
  EXPECT_EQ(r->clusters[0].auth.jwt_role, "backup");
  EXPECT_EQ(r->clusters[0].backup.target.credentials_dir, "/etc/creds");
  base["clusters"].push_back(base["clusters"][0]);
  r = ParseSchedulerConfig(base, "c.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("listed twice"), std::string::npos);
}

// Found by fuzz/config.cc: any count of seconds was taken, and the scheduler converts it to
// the clock's nanoseconds (undefined behaviour on overflow).
TEST(SchedulerConfigTest, TimesTheSchedulerAddsToClockReadingsAreBounded) {
  nlohmann::json base = {
      {"clusters",
       {{{"name", "a"},
         {"openbao", {{"addresses", {"http://x"}}, {"tokenFile", "/t"}}},
         {"backup",
          {{"schedule", "@daily"}, {"target", {{"provider", "file"}, {"bucket", "/b"}}}}}}}}};
  for (const char* field : {"startingDeadlineSeconds", "shutdownGracePeriodSeconds"}) {
    nlohmann::json j = base;
    j[field] = 3153600000;  // 100 years
    ASSERT_TRUE(ParseSchedulerConfig(j, "c.yaml").ok()) << field;
    j[field] = 9223372036854775807;
    Result<SchedulerConfig> r = ParseSchedulerConfig(j, "c.yaml");
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  }
}

// A misspelt key is an error with a guess, at every level (a silently ignored `retenton:` would
// mean retention never runs).
TEST(SchedulerConfigTest, UnknownKeysAreRefusedWithTheirPathAndAGuess) {
  nlohmann::json good = {
      {"clusters", nlohmann::json::array(
                       {{{"name", "bao"},
                         {"namespace", "ns"},
                         {"openbao", {{"addresses", "https://bao:8200"}, {"tokenFile", "/t"}}},
                         {"backup",
                          {{"schedule", "@hourly"},
                           {"target", {{"provider", "file"}, {"bucket", "/tmp/x"}}},
                           {"retention", {{"maxCount", 3}}}}}}})}};
  ASSERT_TRUE(ParseSchedulerConfig(good, "c.yaml").ok());
  struct Case {
    std::vector<std::string> path;  // where to add the misspelt key
    std::string key, want;
  };
  std::vector<Case> cases = {
      {{}, "cluster", "cluster: unknown field; did you mean \"clusters\"?"},
      {{"clusters", "0"},
       "namespce",
       "clusters[0].namespce: unknown field; did you mean \"namespace\"?"},
      {{"clusters", "0", "openbao"},
       "adresses",
       "clusters[0].openbao.adresses: unknown field; did you mean \"addresses\"?"},
      {{"clusters", "0", "backup"},
       "retenton",
       "clusters[0].backup.retenton: unknown field; did you mean \"retention\"?"},
      {{"clusters", "0", "backup", "retention"},
       "maxcount",
       "clusters[0].backup.retention.maxcount: unknown field; did you mean \"maxCount\"?"},
      {{"clusters", "0", "backup", "target"},
       "buckt",
       "clusters[0].backup.target.buckt: unknown field; did you mean \"bucket\"?"},
  };
  for (const Case& c : cases) {
    nlohmann::json j = good;
    nlohmann::json* at = &j;
    for (const std::string& step : c.path) {
      at = at->is_array() ? &(*at)[*ParseInteger<size_t>(step, 0, 1000000)] : &(*at)[step];
    }
    (*at)[c.key] = 1;
    Result<SchedulerConfig> r = ParseSchedulerConfig(j, "c.yaml");
    ASSERT_FALSE(r.ok()) << c.key;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace bao::schedule
