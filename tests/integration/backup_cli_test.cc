// `bao-backup backup` end to end: the real binary against the OpenBao test server, into a
// local directory (and `prune`'s result on the same kind of directory).
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "backup/naming.h"
#include "cli_fixture.h"
#include "common/time.h"
#include "snapshot/testing/archive_builder.h"
#include "support/test_pki.h"

namespace bao::testing {
namespace {

constexpr const char* kSnapshotPath = "sys/storage/raft/snapshot";

class BackupCliTest : public CliTest {
 protected:
  void StartServer(BaoTestServerOptions options = {}) {
    server_ = std::make_unique<BaoTestServer>(options);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(server_->AddToken(reader_token_, {{kSnapshotPath, {"read"}}}).ok());
  }

  std::vector<std::string> BackupArgs(const std::string& addr) {
    return {"backup",   "--bao-addr",    addr,          "--provider", "file",
            "--bucket", store_.path(),   "--namespace", "ns1",        "--cluster",
            "bao",      "--leader-wait", "2s"};
  }

  RunResult Backup(const std::string& addr, std::vector<std::string> extra = {},
                   std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args = BackupArgs(addr);
    args.insert(args.end(), extra.begin(), extra.end());
    if (env.empty()) env = {{"BAO_TOKEN", reader_token_}};
    return Cli(args, env);
  }

  void ExpectNothingStored() { EXPECT_EQ(Files(store_.path()), std::vector<std::string>{}); }

  // Plants `count` tiny fake backups of ns1/bao, one a minute from 2020-01-01 on, each with the
  // checksum file the file store writes: old backups piled up before retention was enabled.
  // Returns the oldest key.
  std::string PlantOldBackups(int count) {
    const std::string body = snapshot::testing::ValidArchive(100, 1);
    const std::string sum = crypto::Sha256Hex(body);
    const std::string dir = store_.path() + "/ns1/bao";
    std::filesystem::create_directories(dir);
    TimePoint start = ParseRfc3339("2020-01-01T00:00:00Z").value();
    std::string oldest;
    for (int i = 0; i < count; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "%08x", i);
      std::string name = backup::KeyTimestamp(start + std::chrono::minutes(i)) + "-" + id + ".snap";
      WriteText(dir + "/" + name, body);
      WriteText(dir + "/" + name + ".sha256", sum + "  " + name + "\n");
      if (i == 0) oldest = "ns1/bao/" + name;
    }
    return oldest;
  }

  // Lines of `log` (stderr, text format) with message `message` and a key= field.
  static int CountLogLines(const std::string& log, const std::string& message) {
    const std::string line = " info " + message + " key=ns1/bao/";
    int n = 0;
    for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++n;
    return n;
  }

  // The kubelet keeps only this much of a container's termination message.
  static constexpr size_t kTerminationMessageLimit = 4096;

  const std::string reader_token_ = "s.reader-token-for-tests-1234";
  std::unique_ptr<BaoTestServer> server_;
  TempDir store_;
};

TEST_F(BackupCliTest, BacksUpThroughAStandby) {
  StartServer();
  ASSERT_TRUE(server_->ClearRequests().ok());
  RunResult r = Backup(server_->Url(1));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json j = LastJson(r);
  ASSERT_TRUE(j.is_object()) << r.out;
  std::string key = j["key"];
  EXPECT_TRUE(key.starts_with("ns1/bao/")) << key;
  EXPECT_EQ(j["leader"], server_->Url(0));
  std::string path = store_.path() + "/" + key;
  EXPECT_EQ(j["size"].get<uint64_t>(), std::filesystem::file_size(path));
  EXPECT_EQ(j["sha256"], FileSha256(path));
  EXPECT_GT(j["raftIndex"].get<uint64_t>(), 0u);
  EXPECT_EQ(ReadText(path + ".sha256").substr(0, 64), j["sha256"]);
  // When it ended, for the operator's lastBackupTime: not before it started.
  Result<TimePoint> started = ParseRfc3339(j.value("startTime", ""));
  Result<TimePoint> finished = ParseRfc3339(j.value("finishedAt", ""));
  ASSERT_TRUE(started.ok() && finished.ok()) << j;
  EXPECT_GE(*finished, *started);
  // The snapshot itself was streamed from the leader, never through the standby.
  Result<nlohmann::json> requests = server_->Requests();
  ASSERT_TRUE(requests.ok());
  int snapshot_gets = 0;
  for (const auto& req : *requests) {
    if (req["path"] == "/v1/sys/storage/raft/snapshot") {
      ++snapshot_gets;
      EXPECT_EQ(req["node"], 0) << req.dump();
    }
  }
  EXPECT_EQ(snapshot_gets, 1);
  EXPECT_EQ(r.out.find(reader_token_), std::string::npos);
  EXPECT_EQ(r.err.find(reader_token_), std::string::npos);
}

// A misspelt key in --config is refused with its path and a guess (ignored, `retenton:` would
// mean that retention never runs).
TEST_F(BackupCliTest, MisspeltConfigKeyIsRefusedWithAGuess) {
  TempDir dir;
  WriteText(dir.File("config.yaml"), "target:\n  provider: file\n  bucket: " + store_.path() +
                                         "\nretenton:\n  maxCount: 1\n");
  RunResult r = Cli({"prune", "--config", dir.File("config.yaml"), "--namespace", "ns1",
                     "--cluster", "bao", "--max-count", "1"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(LastJson(r)
                .value("error", "")
                .find("config.retenton: unknown field; did you mean \"retention\"?"),
            std::string::npos)
      << Describe(r);
}

TEST_F(BackupCliTest, WritesTheResultFileAndHonoursAnExplicitKey) {
  StartServer();
  std::string result_file = store_.File("result.json");
  RunResult r = Backup(server_->Url(0), {"--key", "custom/one.snap", "--result-file", result_file});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(LastJson(r), nlohmann::json::parse(ReadText(result_file)));
  EXPECT_TRUE(std::filesystem::exists(store_.path() + "/custom/one.snap"));
  // Write-once: the same key again is refused before OpenBao is asked, the object kept.
  std::string before = FileSha256(store_.path() + "/custom/one.snap");
  ASSERT_TRUE(server_->ClearRequests().ok());
  RunResult again = Backup(server_->Url(0), {"--key", "custom/one.snap"});
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  EXPECT_NE(LastJson(again).value("error", "").find("already exists"), std::string::npos);
  EXPECT_TRUE(server_->Requests()->empty()) << server_->Requests()->dump();
  EXPECT_EQ(FileSha256(store_.path() + "/custom/one.snap"), before);
}

// The first backup after retention is enabled on thousands of old backups: the result (the
// Job's termination message, which the kubelet cuts at 4096 bytes) carries counts, not one
// entry per pruned object; every pruned key is in the log instead.
TEST_F(BackupCliTest, ResultStaysSmallWhenRetentionPrunesThousands) {
  constexpr int kOld = 3000;
  PlantOldBackups(kOld);
  StartServer();
  TempDir out;
  std::string result_file = out.File("termination-log");
  RunResult r = Backup(server_->Url(0), {"--max-count", "1", "--result-file", result_file});
  ASSERT_EQ(r.exit_code, 0) << r.out.substr(0, 2000) << "\n" << r.err.substr(0, 2000);
  std::string text = ReadText(result_file);
  EXPECT_LT(text.size(), kTerminationMessageLimit / 4) << text.substr(0, 500);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  ASSERT_TRUE(j.is_object()) << text.substr(0, 500);
  EXPECT_EQ(LastJson(r), j);
  EXPECT_TRUE(j["key"].get<std::string>().starts_with("ns1/bao/")) << j;
  EXPECT_EQ(j["pruned"], kOld) << j;
  EXPECT_EQ(j["kept"], 1) << j;
  EXPECT_EQ(j["oldestKept"], j["key"]) << j;
  EXPECT_FALSE(j.contains("retentionError")) << j;
  // Only the new backup (and its checksum) is left; each deleted key was logged.
  std::vector<std::string> left = Files(store_.path() + "/ns1/bao");
  std::sort(left.begin(), left.end());
  std::string name = std::filesystem::path(j["key"].get<std::string>()).filename().string();
  EXPECT_EQ(left, (std::vector<std::string>{name, name + ".sha256"}));
  EXPECT_EQ(CountLogLines(r.err, "deleted"), kOld);
}

// prune's result, dry run or not, is counts whatever the number of backups; the plan (each
// key, kept or deleted, and why) is in the log.
TEST_F(BackupCliTest, PruneResultStaysSmallWithThousandsOfBackups) {
  constexpr int kBackups = 3000;
  std::string oldest = PlantOldBackups(kBackups);
  // One more object without a recorded checksum: not counted, kept (no maxAge).
  WriteText(store_.path() + "/ns1/bao/2019-06-01T00-00-00Z-ffffffff.snap", "cut short");
  TempDir out;
  std::string result_file = out.File("termination-log");
  auto prune = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {
        "prune",     "--provider", "file",        "--bucket", store_.path(),   "--namespace", "ns1",
        "--cluster", "bao",        "--max-count", "1",        "--result-file", result_file};
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  };
  auto result = [&](const RunResult& r) {
    std::string text = ReadText(result_file);
    EXPECT_LT(text.size(), kTerminationMessageLimit / 4) << text.substr(0, 500);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    EXPECT_TRUE(j.is_object()) << text.substr(0, 500);
    EXPECT_EQ(LastJson(r), j);
    return j;
  };

  RunResult dry = prune({"--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.out.substr(0, 2000) << "\n" << dry.err.substr(0, 2000);
  nlohmann::json d = result(dry);
  EXPECT_EQ(d["dryRun"], true) << d;
  EXPECT_EQ(d["backups"], kBackups + 1) << d;
  EXPECT_EQ(d["unverifiable"], 1) << d;
  EXPECT_EQ(d["kept"], 2) << d;
  EXPECT_EQ(d["toDelete"], kBackups - 1) << d;
  EXPECT_EQ(d["deleted"], 0) << d;
  EXPECT_EQ(CountLogLines(dry.err, "would delete"), kBackups - 1);
  EXPECT_TRUE(std::filesystem::exists(store_.path() + "/" + oldest));

  RunResult real = prune({});
  ASSERT_EQ(real.exit_code, 0) << real.out.substr(0, 2000) << "\n" << real.err.substr(0, 2000);
  nlohmann::json j = result(real);
  EXPECT_EQ(j["dryRun"], false) << j;
  EXPECT_EQ(j["deleted"], kBackups - 1) << j;
  EXPECT_EQ(j["failed"], 0) << j;
  EXPECT_EQ(j["kept"], 2) << j;
  EXPECT_EQ(j["oldestKept"], "ns1/bao/2019-06-01T00-00-00Z-ffffffff.snap") << j;
  EXPECT_EQ(CountLogLines(real.err, "deleted"), kBackups - 1);
  EXPECT_EQ(CountLogLines(real.err, "kept"), 2);
  EXPECT_FALSE(std::filesystem::exists(store_.path() + "/" + oldest));
  EXPECT_EQ(Files(store_.path() + "/ns1/bao").size(), 3u);  // newest, its checksum, unverifiable
}

// CLI11 echoed the command line in its errors: a mistyped --bao-tokn leaked the token.
TEST_F(BackupCliTest, MistypedFlagsNeverEchoTheirValues) {
  const std::string secret = "s.cli-secret-value-0123456789";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"backup", "--bao-tokn", secret, "--bucket", store_.path()},
        std::vector<std::string>{"backup", "--bao-tokn=" + secret},
        std::vector<std::string>{"backup", "--part-size", secret}}) {
    RunResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("<value>"), std::string::npos) << r.err;
  }
  // A token on the command line works, with a warning that it is visible in the process list.
  StartServer();
  RunResult r = Cli({"backup", "--bao-addr", server_->Url(0), "--bao-token", reader_token_,
                     "--bucket", store_.path(), "--namespace", "ns1", "--cluster", "bao"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find("prefer --bao-token-file"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(reader_token_), std::string::npos);
}

TEST_F(BackupCliTest, JwtLoginGoodAndBad) {
  TempDir keys;
  Result<RsaKeyPair> pair = MakeRsaKeyPair();
  ASSERT_TRUE(pair.ok());
  WriteText(keys.File("jwt.pub"), pair->public_pem);
  BaoTestServerOptions options;
  options.jwt_public_key_file = keys.File("jwt.pub");
  StartServer(options);
  std::string subject = "system:serviceaccount:ns1:bao-backup-serviceaccount";
  ASSERT_TRUE(server_
                  ->AddJwtRole({{"name", "openbao-operator-backup"},
                                {"bound_audiences", {"openbao-internal"}},
                                {"bound_subject", subject},
                                {"policies", {{kSnapshotPath, {"read"}}}},
                                {"ttl", 600}})
                  .ok());
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto jwt_run = [&](nlohmann::json claims) {
    Result<std::string> jwt = MakeJwt(pair->private_pem, claims);
    EXPECT_TRUE(jwt.ok());
    WriteText(keys.File("token"), *jwt);
    RunResult r =
        Backup(server_->Url(1),
               {"--jwt-role", "openbao-operator-backup", "--jwt-token-file", keys.File("token")},
               {{"BAO_TOKEN", ""}});
    EXPECT_EQ(r.out.find(*jwt), std::string::npos);
    EXPECT_EQ(r.err.find(*jwt), std::string::npos);
    return r;
  };
  nlohmann::json good = {{"iss", "https://kubernetes.default.svc"},
                         {"sub", subject},
                         {"aud", {"openbao-internal"}},
                         {"iat", now},
                         {"nbf", now},
                         {"exp", now + 600}};
  RunResult ok = jwt_run(good);
  ASSERT_EQ(ok.exit_code, 0) << Describe(ok);
  ASSERT_EQ(Files(store_.path()).size(), 2u);  // the object and its checksum file
  std::filesystem::remove_all(store_.path() + "/ns1");

  struct Bad {
    const char* name;
    nlohmann::json claims;
    const char* expect;
  };
  nlohmann::json wrong_aud = good, wrong_sub = good, expired = good;
  wrong_aud["aud"] = {"somebody-else"};
  wrong_sub["sub"] = "system:serviceaccount:ns1:intruder";
  expired["exp"] = now - 3600;
  expired["iat"] = now - 7200;
  expired["nbf"] = now - 7200;
  for (const Bad& bad :
       {Bad{"wrong audience", wrong_aud, "audience"}, Bad{"wrong subject", wrong_sub, "subject"},
        Bad{"expired", expired, "expired"}}) {
    RunResult r = jwt_run(bad.claims);
    EXPECT_EQ(r.exit_code, 2) << bad.name << "\n" << Describe(r);
    EXPECT_NE(LastJson(r).value("error", "").find(bad.expect), std::string::npos)
        << bad.name << ": " << r.out;
    EXPECT_EQ(LastJson(r).value("stage", ""), "auth");
    ExpectNothingStored();
  }
}

TEST_F(BackupCliTest, TokenWithoutReadFailsClearlyAndStoresNothing) {
  StartServer();
  const std::string weak = "s.no-snapshot-read-token";
  ASSERT_TRUE(server_->AddToken(weak, {{"sys/health", {"read"}}}).ok());
  RunResult r = Backup(server_->Url(0), {}, {{"BAO_TOKEN", weak}});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.out.find("\\\"read\\\" capability on sys/storage/raft/snapshot"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find(weak), std::string::npos);
  EXPECT_EQ(r.err.find(weak), std::string::npos);
  ExpectNothingStored();
}

TEST_F(BackupCliTest, TruncatedAndCorruptStreamsStoreNothing) {
  BaoTestServerOptions options;
  options.state_size = 4 << 20;
  StartServer(options);
  ASSERT_TRUE(server_->SetFaults({{"cut_after_bytes", 1000000}}).ok());
  RunResult cut = Backup(server_->Url(0));
  EXPECT_EQ(cut.exit_code, 4) << Describe(cut);
  ExpectNothingStored();

  for (uint64_t at : {20ull, 600ull, 2000000ull}) {
    ASSERT_TRUE(server_->SetFaults({{"corrupt_at_byte", at}}).ok());
    RunResult bad = Backup(server_->Url(0));
    EXPECT_EQ(bad.exit_code, 6) << "corrupt at " << at << "\n" << Describe(bad);
    EXPECT_EQ(LastJson(bad).value("stage", ""), "verify");
    ExpectNothingStored();
  }
  ASSERT_TRUE(server_->ClearFaults().ok());
  EXPECT_EQ(Backup(server_->Url(0)).exit_code, 0);
}

TEST_F(BackupCliTest, LeaderChangeMidStreamFailsTheBackup) {
  BaoTestServerOptions options;
  options.state_size = 4 << 20;
  StartServer(options);
  ASSERT_TRUE(server_->SetFaults({{"leader_change_after_bytes", 1500000}, {"count", 1}}).ok());
  RunResult r = Backup(server_->Url(0));
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_NE(LastJson(r).value("error", "").find("leader changed"), std::string::npos) << r.out;
  ExpectNothingStored();
  // The next run finds the new leader.
  RunResult again = Backup(server_->Url(0));
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_EQ(LastJson(again)["leader"], server_->Url(1));
}

TEST_F(BackupCliTest, NoLeaderAndUnreachableNodesAreLeaderDiscoveryFailures) {
  StartServer();
  ASSERT_TRUE(server_->Seal(0, true).ok());
  RunResult sealed = Backup(server_->Url(1));
  EXPECT_EQ(sealed.exit_code, 3) << Describe(sealed);
  EXPECT_NE(sealed.out.find("no active OpenBao node"), std::string::npos) << sealed.out;

  int dead_port = FreePort();
  RunResult dead = Backup("http://127.0.0.1:" + std::to_string(dead_port));
  EXPECT_EQ(dead.exit_code, 3) << Describe(dead);
  EXPECT_NE(dead.out.find("127.0.0.1:" + std::to_string(dead_port)), std::string::npos);
  ExpectNothingStored();
}

TEST_F(BackupCliTest, BadConfigurationIsExitOne) {
  StartServer();
  RunResult no_bucket = Cli({"backup", "--bao-addr", server_->Url(0), "--cluster", "bao"},
                            {{"BAO_TOKEN", reader_token_}});
  EXPECT_EQ(no_bucket.exit_code, 1);
  EXPECT_NE(no_bucket.out.find("target.bucket: required"), std::string::npos) << no_bucket.out;
  RunResult no_creds = Backup(server_->Url(0), {}, {{"BAO_TOKEN", ""}});
  EXPECT_EQ(no_creds.exit_code, 1) << Describe(no_creds);
  RunResult bad_part = Backup(server_->Url(0), {"--part-size", "100"});
  EXPECT_EQ(bad_part.exit_code, 1);
  RunResult bad_name = Backup(server_->Url(0), {"--cluster", "Not_Valid"});
  EXPECT_EQ(bad_name.exit_code, 1);
  ExpectNothingStored();
}

TEST_F(BackupCliTest, VerifiesOpenBaoTlsWithTheGivenCa) {
  BaoTestServerOptions options;
  options.tls = true;
  StartServer(options);
  RunResult no_ca = Backup(server_->Url(1));
  EXPECT_EQ(no_ca.exit_code, 3) << Describe(no_ca);
  EXPECT_NE(no_ca.out.find("TLS"), std::string::npos) << no_ca.out;
  RunResult with_ca = Backup(server_->Url(1), {"--bao-cacert", server_->ca_file()});
  EXPECT_EQ(with_ca.exit_code, 0) << Describe(with_ca);
}

TEST_F(BackupCliTest, SigtermDuringTheStreamLeavesNothing) {
  BaoTestServerOptions options;
  options.state_size = 8 << 20;
  StartServer(options);
  ASSERT_TRUE(server_->SetFaults({{"stall_after_bytes", 3000000}}).ok());
  Process p;
  std::vector<std::string> args = BackupArgs(server_->Url(0));
  args.insert(args.begin(), BuildBinary("bao-backup"));
  ASSERT_TRUE(p.Start(args, {{"BAO_TOKEN", reader_token_}}));
  // Wait until the partial file is being written, then interrupt.
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const std::string& f : Files(store_.path())) {
          if (f.find(".partial-") != std::string::npos &&
              std::filesystem::file_size(store_.path() + "/" + f) > 0) {
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(30)));
  p.Signal(SIGTERM);
  int code = p.Wait(std::chrono::seconds(30));
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1);
  ExpectNothingStored();
}

TEST_F(BackupCliTest, OneGibSnapshot) {
  BaoTestServerOptions options;
  options.state_size = 1ull << 30;
  StartServer(options);
  RunResult r = Backup(server_->Url(1));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json j = LastJson(r);
  EXPECT_GT(j["size"].get<uint64_t>(), 1ull << 30);
  std::string path = store_.path() + "/" + j["key"].get<std::string>();
  EXPECT_EQ(FileSha256(path), j["sha256"]);
  RunResult verify = Cli({"verify", "--bucket", store_.path(), "--key", j["key"]});
  EXPECT_EQ(verify.exit_code, 0) << Describe(verify);
}

}  // namespace
}  // namespace bao::testing
