// Extra targets end to end: the real bao-backup binary streams one snapshot of the OpenBao test
// server into MinIO (primary) and Azurite (an --extra-target) at once. Both copies are read
// back with the providers' own tools; a secondary that stops answering mid-upload costs its
// copy only, and leaves nothing behind.
#include <fstream>

#include "cli_fixture.h"
#include "common/files.h"
#include "support/azurite.h"
#include "support/fault_proxy.h"
#include "support/minio.h"

namespace bao::testing {
namespace {

using nlohmann::json;

class ExtraTargetsTest : public CliTest {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(minio_.Start(&error)) << error;
    ASSERT_TRUE(minio_.CreateBucket("backups", &error)) << error;
    WriteText(s3_creds_.File("accessKeyId"), minio_.access_key() + "\n");
    WriteText(s3_creds_.File("secretAccessKey"), minio_.secret_key() + "\n");
    ASSERT_TRUE(azurite_.Start(&error)) << error;
    RunResult created = azurite_.Check({"create", "copies"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    WriteText(azure_creds_.File("accountKey"), std::string(kAzuriteKey) + "\n");
    BaoTestServerOptions options;
    options.state_size = 24 << 20;  // several parts and blocks
    server_ = std::make_unique<BaoTestServer>(options);
    ASSERT_TRUE(server_->Start().ok());
  }

  // The --extra-target file for Azurite at `endpoint` (Azurite itself, or a proxy before it).
  std::string AzureTargetFile(const std::string& endpoint) {
    std::string path = files_.File("azure-copy.yaml");
    WriteText(path,
              "name: azure-copy\n"
              "provider: azure\n"
              "endpoint: " +
                  endpoint +
                  "\n"
                  "bucket: copies\n"
                  "pathPrefix: dr\n"
                  "partSize: 5242880\n"
                  "concurrency: 2\n"
                  "azure: {storageAccount: " +
                  std::string(kAzuriteAccount) +
                  "}\n"
                  "credentialsDir: " +
                  azure_creds_.path() + "\n");
    return path;
  }

  // The primary target (MinIO) and naming flags.
  std::vector<std::string> Primary() {
    return {"--provider",
            "s3",
            "--endpoint",
            minio_.endpoint(),
            "--use-path-style",
            "--bucket",
            "backups",
            "--path-prefix",
            "prod",
            "--credentials-dir",
            s3_creds_.path(),
            "--part-size",
            "5242880",
            "--concurrency",
            "2",
            "--namespace",
            "ns",
            "--cluster",
            "bao"};
  }

  RunResult Backup(const std::string& extra_target_file, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"backup", "--bao-addr", server_->Url(1)};
    for (const std::string& a : Primary()) args.push_back(a);
    args.insert(args.end(), {"--extra-target", extra_target_file});
    args.insert(args.end(), more.begin(), more.end());
    return Cli(args, {{"BAO_TOKEN", server_->admin_token()}});
  }

  std::string MinioSha256(const std::string& key) {
    TempDir out;
    RunResult get = minio_.Aws({"s3", "cp", "s3://backups/" + key, out.File("object")});
    EXPECT_EQ(get.exit_code, 0) << get.err;
    return FileSha256(out.File("object"));
  }

  std::string AzuriteSha256(const std::string& key) {
    TempDir out;
    RunResult get = azurite_.Check({"download", "copies", key, out.File("blob")});
    EXPECT_EQ(get.exit_code, 0) << get.err;
    return FileSha256(out.File("blob"));
  }

  std::vector<std::string> AzureNames(const std::string& command) {
    RunResult r = azurite_.Check({command, "copies", "dr/"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(LastLine(r.out), nullptr, false);
    std::vector<std::string> names;
    if (j.is_array()) {
      for (const json& n : j) {
        names.push_back(n.is_string() ? n.get<std::string>() : n.value("name", n.dump()));
      }
    }
    return names;
  }

  MinioServer minio_;
  Azurite azurite_;
  TempDir s3_creds_, azure_creds_, files_;
  std::unique_ptr<BaoTestServer> server_;
};

TEST_F(ExtraTargetsTest, BothCopiesAreByteIdenticalWithTheSameSha256) {
  RunResult r = Backup(AzureTargetFile(azurite_.endpoint()), {"--max-count", "1"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = LastJson(r);
  const std::string key = j["key"], sha = j["sha256"];
  ASSERT_EQ(j["targets"].size(), 2u) << j.dump();
  EXPECT_EQ(j["copiesFailed"], 0) << j.dump();
  EXPECT_EQ(j["targets"][0]["name"], "primary");
  const json& copy = j["targets"][1];
  EXPECT_EQ(copy["name"], "azure-copy");
  EXPECT_EQ(copy["ok"], true) << j.dump();
  EXPECT_EQ(copy["size"], j["size"]);
  EXPECT_EQ(copy["pruned"], 0) << "retention ran in the copy target too: " << j.dump();
  // Same name below each target's own prefix.
  const std::string copy_key = copy["key"];
  EXPECT_TRUE(key.starts_with("prod/ns/bao/")) << key;
  EXPECT_EQ(copy_key, "dr/" + key.substr(std::string("prod/").size()));
  EXPECT_EQ(MinioSha256(key), sha);
  EXPECT_EQ(AzuriteSha256(copy_key), sha);
  EXPECT_EQ(r.err.find(minio_.secret_key()), std::string::npos);
  EXPECT_EQ(r.err.find(kAzuriteKey), std::string::npos);

  // list, verify (and restore, see real_openbao_restore_test.cc) work against the copy.
  std::vector<std::string> where = Primary();
  where.insert(where.end(),
               {"--extra-target", AzureTargetFile(azurite_.endpoint()), "--target", "azure-copy"});
  std::vector<std::string> list = {"list", "-o", "json"};
  list.insert(list.end(), where.begin(), where.end());
  RunResult listed = Cli(list);
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  json entries = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(entries.is_array() && entries.size() == 1) << listed.out;
  EXPECT_EQ(entries[0]["key"], copy_key);
  EXPECT_EQ(entries[0]["sha256"], sha);
  std::vector<std::string> verify = {"verify", "--latest"};
  verify.insert(verify.end(), where.begin(), where.end());
  RunResult verified = Cli(verify);
  EXPECT_EQ(verified.exit_code, 0) << Describe(verified);
  EXPECT_EQ(LastJson(verified)["key"], copy_key);

  // A name that is no target is a configuration error that names the targets there are.
  std::vector<std::string> wrong = {"list"};
  wrong.insert(wrong.end(), where.begin(), where.end() - 1);
  wrong.push_back("no-such-copy");
  RunResult refused = Cli(wrong);
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_NE(refused.err.find("primary, azure-copy"), std::string::npos) << refused.err;
}

// The secondary stops answering in the middle of the upload (its Put Block requests stall):
// after the stall timeout and retries the copy fails, the primary is stored and verified, the
// result and the log say which copy failed, and the secondary holds neither a blob nor an
// uncommitted block list.
TEST_F(ExtraTargetsTest, ASecondaryThatStopsMidUploadCostsOnlyItsCopy) {
  HttpFaultProxy proxy(azurite_.port());
  ASSERT_NE(proxy.port(), 0);
  int stall = proxy.AddRule(HttpFaultProxy::StallAfter(1 << 20, HttpFaultProxy::Where::kRequestBody)
                                .On("PUT", "blockid=")
                                .Times(-1));
  RunResult r = Backup(AzureTargetFile(proxy.url() + "/" + kAzuriteAccount),
                       {"--storage-stall-timeout", "2s"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_GT(proxy.fired(stall), 0) << "the secondary never stalled";
  json j = LastJson(r);
  EXPECT_EQ(j["copiesFailed"], 1) << j.dump();
  const json& copy = j["targets"][1];
  EXPECT_EQ(copy["ok"], false) << j.dump();
  EXPECT_EQ(copy["reason"], "Stalled") << j.dump();
  EXPECT_EQ(copy["stage"], "storage") << j.dump();
  EXPECT_EQ(MinioSha256(j["key"]), j["sha256"]);
  EXPECT_NE(r.err.find("the copy \"azure-copy\" failed"), std::string::npos) << r.err;
  // Checked before the stalled requests are released (a released Put Block could still land).
  EXPECT_EQ(AzureNames("list"), std::vector<std::string>{});
  EXPECT_EQ(AzureNames("uncommitted"), std::vector<std::string>{});
  proxy.ClearRules();
}

// A copy target that cannot even be opened (no credentials) does not stop the backup: the
// primary is stored, the copy is reported failed as a configuration problem.
TEST_F(ExtraTargetsTest, AnUnopenableCopyTargetIsReportedAndThePrimaryStored) {
  std::string path = files_.File("broken.yaml");
  WriteText(path, "name: broken\nprovider: azure\nendpoint: " + azurite_.endpoint() +
                      "\nbucket: copies\nazure: {storageAccount: " + kAzuriteAccount +
                      "}\ncredentialsDir: " + files_.File("missing") + "\n");
  RunResult r = Backup(path);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = LastJson(r);
  EXPECT_EQ(j["copiesFailed"], 1) << j.dump();
  EXPECT_EQ(j["targets"][1]["stage"], "config") << j.dump();
  EXPECT_EQ(MinioSha256(j["key"]), j["sha256"]);
}

// Mistakes in the extra target file are refused before anything runs (exit 1), by field.
TEST_F(ExtraTargetsTest, BadExtraTargetFilesAreRefusedByField) {
  struct Case {
    std::string yaml, expected;
  };
  const std::vector<Case> cases = {
      {"name: primary\nprovider: file\nbucket: /tmp/x\n", "other than \"primary\""},
      {"name: Bad_Name\nprovider: file\nbucket: /tmp/x\n", "must be a lower-case DNS label"},
      {"bucket: /tmp/x\n", "target.provider: required"},
      {"provider: s3\nbucket: b\n", "endpoint"},
      {"provider: s3\nendpoint: https://u:p@host\nbucket: b\n", "user-info"},
  };
  for (const Case& c : cases) {
    std::string path = files_.File("bad.yaml");
    WriteText(path, c.yaml);
    RunResult r = Backup(path);
    EXPECT_EQ(r.exit_code, 1) << c.yaml << Describe(r);
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << c.yaml << r.err;
  }
  // Two files with the same (default) name.
  std::string a = files_.File("a.yaml"), b = files_.File("b.yaml");
  WriteText(a, "name: copy\nprovider: file\nbucket: " + files_.File("a") + "\n");
  WriteText(b, "name: copy\nprovider: file\nbucket: " + files_.File("b") + "\n");
  RunResult r = Backup(a, {"--extra-target", b});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("is already the name of target 0"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace bao::testing
