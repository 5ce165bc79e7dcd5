// `bao-backup backup --provider s3` end to end against MinIO: the real binary, the OpenBao
// test server, credentials from a Secret-shaped directory; read back with the AWS CLI.
#include <signal.h>

#include "cli_fixture.h"
#include "common/files.h"
#include "common/time.h"
#include "support/minio.h"

namespace bao::testing {
namespace {

class S3CliTest : public CliTest {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(minio_.Start(&error)) << error;
    ASSERT_TRUE(minio_.CreateBucket("backups", &error)) << error;
    WriteText(creds_.File("accessKeyId"), minio_.access_key() + "\n");
    WriteText(creds_.File("secretAccessKey"), minio_.secret_key() + "\n");
    BaoTestServerOptions options;
    options.state_size = 40 << 20;  // 8 parts of 5 MiB
    server_ = std::make_unique<BaoTestServer>(options);
    ASSERT_TRUE(server_->Start().ok());
  }

  std::vector<std::string> Args() {
    return {BuildBinary("bao-backup"),
            "backup",
            "--bao-addr",
            server_->Url(1),
            "--provider",
            "s3",
            "--endpoint",
            minio_.endpoint(),
            "--use-path-style",
            "--bucket",
            "backups",
            "--path-prefix",
            "prod",
            "--credentials-dir",
            creds_.path(),
            "--part-size",
            "5242880",
            "--concurrency",
            "2",
            "--namespace",
            "ns",
            "--cluster",
            "bao"};
  }

  // The SHA-256 in the checksum side object of `key` ("<hex>  <name>"), as the AWS CLI reads it.
  std::string SideChecksum(const std::string& key) {
    TempDir out;
    RunResult get = minio_.Aws({"s3", "cp", "s3://backups/" + key + ".sha256", out.File("sum")});
    if (get.exit_code != 0) return "(no side object: " + get.err + ")";
    return ReadText(out.File("sum")).substr(0, 64);
  }

  std::map<std::string, std::string> Env() {
    return {{"BAO_TOKEN", server_->admin_token()},
            {"AWS_ACCESS_KEY_ID", ""},
            {"AWS_SECRET_ACCESS_KEY", ""}};
  }

  std::string ListedKeys() {
    RunResult r = minio_.Aws({"s3api", "list-objects-v2", "--bucket", "backups", "--query",
                              "Contents[].Key", "--output", "text"});
    return r.out;
  }

  std::string Uploads() {
    RunResult r = minio_.Aws({"s3api", "list-multipart-uploads", "--bucket", "backups", "--query",
                              "Uploads[].Key", "--output", "text"});
    return r.out;
  }

  MinioServer minio_;
  TempDir creds_;
  std::unique_ptr<BaoTestServer> server_;
};

TEST_F(S3CliTest, BackupLandsInMinioWithItsChecksum) {
  std::vector<std::string> args = Args();
  args.erase(args.begin());
  RunResult r = Cli(args, Env());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json j = LastJson(r);
  std::string key = j["key"];
  EXPECT_TRUE(key.starts_with("prod/ns/bao/")) << key;
  RunResult head = minio_.Aws({"s3api", "head-object", "--bucket", "backups", "--key", key});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  nlohmann::json meta = nlohmann::json::parse(head.out);
  EXPECT_EQ(meta["ContentLength"], j["size"]);
  EXPECT_EQ(SideChecksum(key), j["sha256"]);
  EXPECT_EQ(r.err.find(minio_.secret_key()), std::string::npos);
  // And the toolbox reads it back through the same provider.
  RunResult verify =
      Cli({"verify", "--provider", "s3", "--endpoint", minio_.endpoint(), "--use-path-style",
           "--bucket", "backups", "--path-prefix", "prod", "--credentials-dir", creds_.path(),
           "--namespace", "ns", "--cluster", "bao", "--latest"},
          Env());
  EXPECT_EQ(verify.exit_code, 0) << Describe(verify);
}

// A bucket that does not exist is a clear error for every reading command: exit 5 (storage),
// the bucket named, and nothing created.
TEST_F(S3CliTest, MissingBucketIsAStorageErrorForEveryReadingCommand) {
  const std::vector<std::string> where = {"--provider",
                                          "s3",
                                          "--endpoint",
                                          minio_.endpoint(),
                                          "--use-path-style",
                                          "--bucket",
                                          "no-such-bucket",
                                          "--credentials-dir",
                                          creds_.path(),
                                          "--namespace",
                                          "ns",
                                          "--cluster",
                                          "bao"};
  const std::vector<std::vector<std::string>> commands = {
      {"list"},
      {"verify", "--latest"},
      {"prune", "--max-count", "1"},
      {"restore", "--latest", "--yes", "--bao-addr", server_->Url(0)}};
  for (std::vector<std::string> args : commands) {
    args.insert(args.end(), where.begin(), where.end());
    RunResult r = Cli(args, Env());
    EXPECT_EQ(r.exit_code, 5) << args[0] << ": " << Describe(r);
    nlohmann::json j = LastJson(r);
    EXPECT_EQ(j.value("exitCode", 0), 5) << args[0] << ": " << j.dump();
    EXPECT_NE(j.value("error", "").find("\"no-such-bucket\""), std::string::npos)
        << args[0] << ": " << j.dump();
  }
  RunResult buckets =
      minio_.Aws({"s3api", "list-buckets", "--query", "Buckets[].Name", "--output", "text"});
  EXPECT_EQ(buckets.out.find("no-such-bucket"), std::string::npos) << buckets.out;
}

TEST_F(S3CliTest, AnExistingKeyIsRefusedAndKeptAsItWas) {
  std::vector<std::string> args = Args();
  args.erase(args.begin());
  args.insert(args.end(), {"--key", "prod/ns/bao/fixed.snap"});
  RunResult first = Cli(args, Env());
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  std::string sha = LastJson(first)["sha256"];
  RunResult second = Cli(args, Env());
  EXPECT_EQ(second.exit_code, 1) << Describe(second);
  EXPECT_NE(LastJson(second).value("error", "").find("write-once"), std::string::npos)
      << second.out;
  RunResult head = minio_.Aws(
      {"s3api", "head-object", "--bucket", "backups", "--key", "prod/ns/bao/fixed.snap"});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_EQ(SideChecksum("prod/ns/bao/fixed.snap"), sha);
}

// Immutable backups through the CLI: two backups with --object-lock-mode into an Object Lock
// bucket are locked (list -o json shows each lock); prune --max-count 1 cannot delete the
// older one yet, skips it, reports it locked and succeeds (exit 0); the AWS CLI cannot delete
// it either. Into a bucket without Object Lock, the backup fails with a message that says so.
TEST_F(S3CliTest, ObjectLockedBackupsAreListedWithTheirLockAndSkippedByPrune) {
  std::string error;
  ASSERT_TRUE(minio_.CreateLockedBucket("locked", &error)) << error;
  auto with = [&](std::vector<std::string> args, const std::string& bucket) {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--bucket") args[i + 1] = bucket;
    }
    args.insert(args.end(), {"--object-lock-mode", "GOVERNANCE", "--object-lock-retain-days", "1"});
    return args;
  };
  std::vector<std::string> backup = Args();
  backup.erase(backup.begin());
  std::vector<std::string> keys;
  for (int i = 0; i < 2; ++i) {
    RunResult r = Cli(with(backup, "locked"), Env());
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    keys.push_back(LastJson(r)["key"]);
  }
  const std::vector<std::string> where = {"--provider",
                                          "s3",
                                          "--endpoint",
                                          minio_.endpoint(),
                                          "--use-path-style",
                                          "--bucket",
                                          "locked",
                                          "--path-prefix",
                                          "prod",
                                          "--credentials-dir",
                                          creds_.path(),
                                          "--namespace",
                                          "ns",
                                          "--cluster",
                                          "bao"};
  std::vector<std::string> list = {"list", "-o", "json"};
  list.insert(list.end(), where.begin(), where.end());
  RunResult listed = Cli(list, Env());
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  nlohmann::json entries = nlohmann::json::parse(listed.out.substr(listed.out.find('[')));
  ASSERT_EQ(entries.size(), 2u) << entries.dump();
  const TimePoint now = SystemClock().Now();
  for (const nlohmann::json& e : entries) {
    ASSERT_TRUE(e["lock"].is_object()) << e.dump();
    EXPECT_EQ(e["lock"]["mode"], "GOVERNANCE");
    Result<TimePoint> until = ParseRfc3339(e["lock"]["until"].get<std::string>());
    ASSERT_TRUE(until.ok()) << e.dump();
    EXPECT_GT(*until, now + std::chrono::hours(23));
    EXPECT_LT(*until, now + std::chrono::hours(25));
  }

  std::vector<std::string> prune = {"prune", "--max-count", "1"};
  prune.insert(prune.end(), where.begin(), where.end());
  RunResult pruned = Cli(prune, Env());
  EXPECT_EQ(pruned.exit_code, 0) << Describe(pruned);
  nlohmann::json result = LastJson(pruned);
  EXPECT_EQ(result.value("locked", 0), 1) << result.dump();
  EXPECT_EQ(result.value("failed", -1), 0) << result.dump();
  // The older of the two is the one retention wanted to delete (two backups made in the same
  // second are ordered by their random suffix, so the kept one names it).
  const std::string older = result["oldestKept"] == keys[0] ? keys[1] : keys[0];
  EXPECT_EQ(result["lockedKeys"][0]["key"], older) << result.dump();
  EXPECT_NE(pruned.err.find("locked until"), std::string::npos) << pruned.err;
  RunResult head = minio_.Aws({"s3api", "head-object", "--bucket", "locked", "--key", older});
  ASSERT_EQ(head.exit_code, 0) << head.err;  // still there
  std::string version = nlohmann::json::parse(head.out).value("VersionId", "");
  RunResult cli_del = minio_.Aws(
      {"s3api", "delete-object", "--bucket", "locked", "--key", older, "--version-id", version});
  EXPECT_NE(cli_del.exit_code, 0) << cli_del.out;

  // A bucket without Object Lock: a clear storage error, nothing left behind.
  RunResult refused = Cli(with(backup, "backups"), Env());
  EXPECT_EQ(refused.exit_code, 5) << Describe(refused);
  EXPECT_NE(LastJson(refused).value("error", "").find("does not have Object Lock enabled"),
            std::string::npos)
      << Describe(refused);
  EXPECT_EQ(ListedKeys().find("prod/"), std::string::npos) << ListedKeys();
}

TEST_F(S3CliTest, WrongSecretIsExitFiveAndLeavesNothing) {
  WriteText(creds_.File("secretAccessKey"), "not-the-secret-at-all");
  std::vector<std::string> args = Args();
  args.erase(args.begin());
  RunResult r = Cli(args, Env());
  EXPECT_EQ(r.exit_code, 5) << Describe(r);
  EXPECT_EQ(r.out.find("not-the-secret-at-all"), std::string::npos);
  EXPECT_EQ(r.err.find("not-the-secret-at-all"), std::string::npos);
  EXPECT_EQ(Trim(ListedKeys()), "None");
}

TEST_F(S3CliTest, SigtermDuringMultipartUploadAbortsIt) {
  // Stall the snapshot after three parts' worth of bytes, so parts are in MinIO when the
  // signal arrives.
  ASSERT_TRUE(server_->SetFaults({{"stall_after_bytes", 16 << 20}}).ok());
  Process p;
  ASSERT_TRUE(p.Start(Args(), Env()));
  ASSERT_TRUE(WaitUntil([&] { return Trim(Uploads()) != "None" && !Uploads().empty(); },
                        std::chrono::seconds(60)))
      << "no multipart upload appeared";
  p.Signal(SIGTERM);
  int code = p.Wait(std::chrono::seconds(60));
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1);
  EXPECT_EQ(Trim(Uploads()), "None") << "an unfinished multipart upload was left behind";
  EXPECT_EQ(Trim(ListedKeys()), "None");
}

}  // namespace
}  // namespace bao::testing
