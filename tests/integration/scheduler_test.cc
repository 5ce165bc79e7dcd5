// The standalone scheduler end to end: real backups from the OpenBao test server into a file
// store, driven by a fake clock through Scheduler::Tick, plus one run of the real
// `bao-backup schedule --config` process.
#include "schedule/scheduler.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <mutex>

#include "common/yaml_json.h"
#include "http/client.h"
#include "schedule/metrics.h"
#include "support/bao_testserver.h"
#include "support/testing.h"

namespace bao::schedule {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

Status StatusOf(const Status& s) {
  return s;
}
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.ok() ? Status::Ok() : r.status();
}

#define ASSERT_OK(expr)                              \
  do {                                               \
    Status status_ = StatusOf(expr);                 \
    ASSERT_TRUE(status_.ok()) << status_.ToString(); \
  } while (0)

TimePoint T(const char* text) {
  return *ParseRfc3339(text);
}

// Every regular file under `dir` (temporary ".partial" files included), without the
// ".sha256" side files the file store writes beside each object.
std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() != ".sha256")
      out.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class SchedulerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BaoTestServerOptions o;
    o.nodes = 1;
    o.state_size = 256 << 10;
    server_ = std::make_unique<testing::BaoTestServer>(o);
    ASSERT_OK(server_->Start());
    ASSERT_OK(server_->AddToken("sched-reader-token", {{"sys/storage/raft/snapshot", {"read"}}}));
    testing::WriteText(dir_.File("token"), "sched-reader-token\n");
  }

  std::string StoreDir() const { return dir_.File("store"); }

  std::string ConfigYaml(int max_count, const std::string& metrics = "127.0.0.1:0") {
    return "stateFile: " + dir_.File("state.json") + "\n" + "metricsAddress: " + metrics +
           "\n"
           "startingDeadlineSeconds: 120\n"
           "shutdownGracePeriodSeconds: 0\n"
           "clusters:\n"
           "  - name: prod\n"
           "    namespace: team-a\n"
           "    openbao:\n"
           "      addresses: [" +
           server_->Url(0) +
           "]\n"
           "      tokenFile: " +
           dir_.File("token") +
           "\n"
           "      leaderWait: 2s\n"
           "    backup:\n"
           "      schedule: \"* * * * *\"\n"
           "      target:\n"
           "        provider: file\n"
           "        bucket: " +
           StoreDir() +
           "\n"
           "        pathPrefix: backups\n"
           "      retention:\n"
           "        maxCount: " +
           std::to_string(max_count) + "\n";
  }

  SchedulerConfig Config(int max_count) {
    std::string path = dir_.File("config.yaml");
    testing::WriteText(path, ConfigYaml(max_count));
    Result<SchedulerConfig> cfg = LoadSchedulerConfig(path);
    EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
    return *cfg;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::BaoTestServer> server_;
};

TEST_F(SchedulerIntegrationTest, TwoSlotsTwoBackupsThenRetention) {
  ManualClock clock(T("2026-03-01T11:59:30Z"));
  Scheduler s(Config(/*max_count=*/2), &clock, DefaultHooks(&clock));
  ASSERT_OK(s.Start());
  MetricsServer metrics([&s] { return s.Snapshot(); });
  Result<std::string> addr = metrics.Start("127.0.0.1:0");
  ASSERT_OK(addr);
  for (const char* t : {"2026-03-01T12:00:00Z", "2026-03-01T12:00:40Z", "2026-03-01T12:01:05Z"}) {
    clock.Set(T(t));
    s.Tick(clock.Now());
    s.WaitIdle();
  }
  std::vector<std::string> files = FilesUnder(StoreDir());
  ASSERT_EQ(files.size(), 2u) << ::testing::PrintToString(files);
  ClusterStatus st = s.Snapshot().clusters.at("team-a/prod");
  EXPECT_EQ(st.attempts[kOutcomeSuccess], 2u) << st.ToJson().dump();
  EXPECT_EQ(st.consecutive_failures, 0);
  EXPECT_EQ(st.last_attempt_scheduled_time, T("2026-03-01T12:01:00Z"));
  EXPECT_EQ(st.last_attempt_time, T("2026-03-01T12:01:05Z"));
  EXPECT_EQ(st.last_backup_time, T("2026-03-01T12:01:05Z"));
  EXPECT_EQ(st.next_scheduled_backup, T("2026-03-01T12:02:00Z"));
  EXPECT_GT(st.last_backup_size, 0u);
  EXPECT_EQ(st.last_backup_name.rfind("backups/team-a/prod/", 0), 0u) << st.last_backup_name;
  EXPECT_TRUE(fs::exists(StoreDir() + "/" + st.last_backup_name)) << st.last_backup_name;

  // The third slot makes three backups; maxCount 2 keeps two.
  clock.Set(T("2026-03-01T12:02:01Z"));
  s.Tick(clock.Now());
  s.WaitIdle();
  EXPECT_EQ(FilesUnder(StoreDir()).size(), 2u);

  http::Client client;
  http::Request req;
  req.method = "GET";
  req.url = "http://" + *addr + "/metrics";
  Result<http::Response> res = client.Do(req);
  ASSERT_OK(res);
  EXPECT_EQ(res->status, 200);
  const std::string labels = "{namespace=\"team-a\",cluster=\"prod\"";
  for (const std::string& series :
       {"bao_backup_last_success_timestamp_seconds" + labels + "} 1772366521\n",
        "bao_backup_consecutive_failures" + labels + "} 0\n",
        "bao_backup_next_scheduled_timestamp_seconds" + labels + "} 1772366580\n",
        "bao_backup_attempts_total" + labels + ",outcome=\"success\"} 3\n",
        "bao_backup_last_size_bytes" + labels + "} ",
        "bao_backup_last_duration_seconds" + labels}) {
    EXPECT_NE(res->body.find(series), std::string::npos) << series << "\n" << res->body;
  }
  req.url = "http://" + *addr + "/healthz";
  res = client.Do(req);
  ASSERT_OK(res);
  EXPECT_EQ(res->status, 200);
}

// backup.extraTargets in the scheduler's config: every slot writes a copy into the second
// directory from the same snapshot read, and retention keeps the same count there.
TEST_F(SchedulerIntegrationTest, ExtraTargetsGetEveryBackupAndTheirOwnRetention) {
  const std::string second = dir_.File("second");
  std::string yaml = ConfigYaml(/*max_count=*/1);
  const std::string retention = "      retention:\n";
  yaml.insert(yaml.find(retention),
              "      extraTargets:\n        - name: second\n"
              "          provider: file\n          bucket: " +
                  second + "\n          pathPrefix: copies\n");
  const std::string path = dir_.File("config.yaml");
  testing::WriteText(path, yaml);
  Result<SchedulerConfig> cfg = LoadSchedulerConfig(path);
  ASSERT_OK(cfg);
  ManualClock clock(T("2026-03-01T11:59:30Z"));
  Scheduler s(*cfg, &clock, DefaultHooks(&clock));
  ASSERT_OK(s.Start());
  for (const char* t : {"2026-03-01T12:00:00Z", "2026-03-01T12:01:05Z"}) {
    clock.Set(T(t));
    s.Tick(clock.Now());
    s.WaitIdle();
  }
  ClusterStatus st = s.Snapshot().clusters.at("team-a/prod");
  EXPECT_EQ(st.attempts[kOutcomeSuccess], 2u) << st.ToJson().dump();
  std::vector<std::string> primary = FilesUnder(StoreDir()), copies = FilesUnder(second);
  ASSERT_EQ(primary.size(), 1u) << ::testing::PrintToString(primary);
  ASSERT_EQ(copies.size(), 1u) << ::testing::PrintToString(copies);
  // The same backup under each target's own prefix, byte for byte.
  EXPECT_EQ("copies" + primary[0].substr(std::string("backups").size()), copies[0]);
  EXPECT_EQ(testing::ReadText(StoreDir() + "/" + primary[0]),
            testing::ReadText(second + "/" + copies[0]));
}

TEST_F(SchedulerIntegrationTest, FailuresCountAndASuccessResetsThem) {
  ManualClock clock(T("2026-03-01T11:59:30Z"));
  Scheduler s(Config(0), &clock, DefaultHooks(&clock));
  ASSERT_OK(s.Start());
  ASSERT_OK(server_->SetFaults({{"fail_status", 503}, {"count", 100}}));
  for (const char* t : {"2026-03-01T12:00:00Z", "2026-03-01T12:01:00Z"}) {
    clock.Set(T(t));
    s.Tick(clock.Now());
    s.WaitIdle();
  }
  ClusterStatus st = s.Snapshot().clusters.at("team-a/prod");
  EXPECT_EQ(st.consecutive_failures, 2) << st.ToJson().dump();
  EXPECT_FALSE(st.last_failure_reason.empty());
  EXPECT_EQ(st.last_failure_reason.find("sched-reader-token"), std::string::npos);
  EXPECT_TRUE(FilesUnder(StoreDir()).empty());
  ASSERT_OK(server_->ClearFaults());
  clock.Set(T("2026-03-01T12:02:00Z"));
  s.Tick(clock.Now());
  s.WaitIdle();
  st = s.Snapshot().clusters.at("team-a/prod");
  EXPECT_EQ(st.consecutive_failures, 0) << st.ToJson().dump();
  EXPECT_EQ(st.attempts[kOutcomeFailure], 2u);
  EXPECT_EQ(FilesUnder(StoreDir()).size(), 1u);
}

TEST_F(SchedulerIntegrationTest, ShutdownMidUploadLeavesNoObject) {
  ManualClock clock(T("2026-03-01T11:59:30Z"));
  Scheduler s(Config(0), &clock, DefaultHooks(&clock));
  ASSERT_OK(s.Start());
  ASSERT_OK(server_->SetFaults({{"stall_after_bytes", 20000}}));
  clock.Set(T("2026-03-01T12:00:00Z"));
  s.Tick(clock.Now());
  // The upload is under way once its temporary file exists.
  ASSERT_TRUE(testing::WaitUntil([&] { return !FilesUnder(StoreDir()).empty(); }, seconds(20)));
  s.Shutdown();  // grace 0 s: cancels
  EXPECT_TRUE(FilesUnder(StoreDir()).empty()) << ::testing::PrintToString(FilesUnder(StoreDir()));
  ClusterStatus st = s.Snapshot().clusters.at("team-a/prod");
  EXPECT_EQ(st.attempts[kOutcomeCancelled], 1u) << st.ToJson().dump();
  Result<SchedulerState> saved = LoadState(dir_.File("state.json"));
  ASSERT_OK(saved);
  EXPECT_EQ(saved->clusters.at("team-a/prod").attempts[kOutcomeCancelled], 1u);
}

TEST_F(SchedulerIntegrationTest, RealProcessServesHealthzAndStopsOnSigterm) {
  std::string path = dir_.File("config.yaml");
  testing::WriteText(path, ConfigYaml(0));
  testing::Process p;
  std::string error;
  ASSERT_TRUE(
      p.Start({testing::BuildBinary("bao-backup"), "schedule", "--config", path}, {}, &error))
      << error;
  std::string addr;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        Result<SchedulerState> st = LoadState(dir_.File("state.json"));
        if (st.ok()) addr = st->metrics_address;
        return !addr.empty();
      },
      seconds(20)))
      << p.Stderr();
  ASSERT_TRUE(testing::WaitForHttp("http://" + addr + "/healthz", seconds(10)));
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(seconds(20)), 0) << p.Stderr();
  testing::RunResult status =
      testing::Run({testing::BuildBinary("bao-backup"), "schedule", "--config", path, "--status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json j = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << status.out;
  ASSERT_EQ(j["clusters"].size(), 1u);
  EXPECT_EQ(j["clusters"][0]["name"], "prod");
  EXPECT_TRUE(j["clusters"][0]["status"].contains("nextScheduledBackup")) << status.out;
  EXPECT_EQ(j["metricsAddress"], addr);
}

}  // namespace
}  // namespace bao::schedule
