// Encryption at rest and object lock against the GCS and Azure emulators (fake-gcs-server,
// Azurite). Where an emulator ignores a field, the request bytes are checked instead, against
// what the provider's own SDK sends (Azure: @azure/storage-blob through the same recording
// proxy), and the read-back is shown to refuse an object that does not report what was asked.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/time.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/azure_store.h"
#include "storage/gcs_store.h"
#include "storage/target.h"
#include "support/azurite.h"
#include "support/fake_gcs.h"
#include "support/minio.h"
#include "support/testing.h"

namespace bao::storage {
namespace {

using bao::testing::Azurite;
using bao::testing::FakeGcsServer;
using bao::testing::RunResult;
using bao::testing::TcpProxy;
using bao::testing::TempDir;

Result<ObjectInfo> Upload(Store* store, const std::string& key, const std::string& data) {
  BAO_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> w, store->NewWriter(Context(), key));
  BAO_RETURN_IF_ERROR(w->Append(Context(), data));
  return w->Commit(Context(), CommitInfo{data.size(), crypto::Sha256Hex(data)});
}

// The header lines of `captured` (requests as TcpProxy recorded them) whose name starts with
// `prefix` (lower-case compare), values included, e.g. "x-ms-encryption-scope: scope1".
std::vector<std::string> HeaderLines(const std::string& captured, const std::string& prefix) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < captured.size()) {
    size_t end = captured.find("\r\n", pos);
    if (end == std::string::npos) end = captured.size();
    std::string line = captured.substr(pos, end - pos);
    std::string lower = line;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.starts_with(prefix)) out.push_back(lower);
    pos = end + 2;
  }
  return out;
}

// GCS: the retention goes into the object resource of the upload session, and fake-gcs-server
// keeps it: Stat and List report the lock. (It does not enforce it: a delete succeeds.)
TEST(GcsProtectTest, RetentionIsSetOnTheObjectAndReported) {
  FakeGcsServer server;
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  ASSERT_TRUE(server.CreateBucket("locked", &error)) << error;
  TargetConfig t;
  t.provider = "gcs";
  t.endpoint = server.url();
  t.bucket = "locked";
  t.object_lock_mode = "GOVERNANCE";  // GCS's "Unlocked"
  t.object_lock_retain_days = 2;
  ASSERT_TRUE(ValidateTarget(t, "target").ok());
  auto store = OpenGcsStore(t, GcsOptions{});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const TimePoint before = SystemClock().Now();
  Result<ObjectInfo> info = Upload(store->get(), "ns/c/a.snap", "hello, retention");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->lock_mode, "Unlocked");
  Result<ObjectInfo> stat = (*store)->Stat(Context(), "ns/c/a.snap");
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->lock_mode, "Unlocked");
  EXPECT_GE(stat->locked_until, before + std::chrono::hours(48) - std::chrono::seconds(1));
  EXPECT_LE(stat->locked_until, SystemClock().Now() + std::chrono::hours(48));
  bool listed = false;
  ASSERT_TRUE((*store)
                  ->List(Context(), "ns/",
                         [&](const ObjectInfo& o) {
                           listed =
                               o.lock_mode == "Unlocked" && o.locked_until == stat->locked_until;
                           return Status::Ok();
                         })
                  .ok());
  EXPECT_TRUE(listed);
}

// GCS kmsKeyName: sent as the upload's kmsKeyName parameter (as the JSON API documents it);
// fake-gcs-server ignores it and reports no kmsKeyName, so the read-back refuses the object
// (never a silently unencrypted backup) and deletes it again.
TEST(GcsProtectTest, KmsKeyNameIsSentAndAnObjectWithoutItIsRefused) {
  FakeGcsServer server;
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  ASSERT_TRUE(server.CreateBucket("cmek", &error)) << error;
  TcpProxy proxy(server.port());
  const std::string key_name = "projects/p/locations/global/keyRings/r/cryptoKeys/k";
  TargetConfig t;
  t.provider = "gcs";
  t.endpoint = proxy.endpoint();
  t.bucket = "cmek";
  t.gcs_kms_key_name = key_name;
  ASSERT_TRUE(ValidateTarget(t, "target").ok());
  auto store = OpenGcsStore(t, GcsOptions{});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Result<ObjectInfo> info = Upload(store->get(), "a.snap", "hello, cmek");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kFailedPrecondition) << info.status().ToString();
  EXPECT_EQ(info.status().reason(), Reason::kBadResponse);
  EXPECT_NE(info.status().message().find("kmsKeyName"), std::string::npos);
  const std::string sent = proxy.Captured();
  EXPECT_NE(sent.find("uploadType=resumable&name=a.snap&kmsKeyName=" + http::UrlEncode(key_name)),
            std::string::npos)
      << sent.substr(0, 2000);
  EXPECT_NE(sent.find("uploadType=media&ifGenerationMatch=0&name=a.snap.sha256&kmsKeyName="),
            std::string::npos);
  Result<ObjectInfo> gone = (*store)->Stat(Context(), "a.snap");
  EXPECT_EQ(gone.status().code(), Code::kNotFound) << gone.status().ToString();
}

class AzureProtectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(azurite_.Start(&error)) << error;
    ASSERT_EQ(azurite_.Check({"create", "backups"}).exit_code, 0);
    testing::WriteText(creds_.File("accountKey"), std::string(testing::kAzuriteKey) + "\n");
  }
  TargetConfig Target(const std::string& endpoint) {
    TargetConfig t;
    t.provider = "azure";
    t.bucket = "backups";
    t.azure_storage_account = testing::kAzuriteAccount;
    t.endpoint = endpoint;
    t.credentials_dir = creds_.path();
    t.part_size = 5 << 20;
    t.concurrency = 2;
    return t;
  }
  Azurite azurite_;
  TempDir creds_;
};

// Azure: x-ms-encryption-scope on Put Block, Put Block List and Put Blob, and the
// immutability policy headers on Put Block List and Put Blob, spelled as @azure/storage-blob
// spells them (both clients recorded by the same proxy in front of Azurite). Azurite accepts
// and ignores both and reports neither on Get Blob Properties, so the read-back refuses the
// blob and takes it back.
TEST_F(AzureProtectTest, ScopeAndPolicyHeadersAreTheSdksAndTheReadBackChecksThem) {
  TcpProxy proxy(azurite_.port());
  const std::string endpoint = proxy.endpoint() + "/" + testing::kAzuriteAccount;
  const std::string until = "2030-01-02T03:04:05Z";

  // The SDK's Put Blob.
  TempDir files;
  testing::WriteText(files.File("small"), "hello, scope");
  const std::string sdk_conn = std::string("DefaultEndpointsProtocol=http;AccountName=") +
                               testing::kAzuriteAccount + ";AccountKey=" + testing::kAzuriteKey +
                               ";BlobEndpoint=" + endpoint + ";";
  RunResult sdk = azurite_.Check(
      {"protected-upload", "backups", "sdk.snap", files.File("small"), "scope1", "Unlocked", until},
      sdk_conn);
  ASSERT_EQ(sdk.exit_code, 0) << sdk.err;
  const std::string sdk_sent = proxy.Captured();
  const std::vector<std::string> sdk_scope = HeaderLines(sdk_sent, "x-ms-encryption-scope");
  const std::vector<std::string> sdk_policy = HeaderLines(sdk_sent, "x-ms-immutability-policy");
  ASSERT_EQ(sdk_scope, std::vector<std::string>{"x-ms-encryption-scope: scope1"});
  ASSERT_EQ(sdk_policy.size(), 2u) << sdk_sent.substr(0, 3000);

  // Ours: one Put Blob (small) and one Put Block + Put Block List upload (two blocks).
  TargetConfig t = Target(endpoint);
  t.azure_encryption_scope = "scope1";
  t.object_lock_mode = "Unlocked";
  t.object_lock_retain_days = 1;
  ASSERT_TRUE(ValidateTarget(t, "target").ok());
  auto store = OpenAzureStore(t, AzureOptions{});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  size_t before = sdk_sent.size();
  Result<ObjectInfo> small = Upload(store->get(), "ours.snap", "hello, scope");
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), Code::kFailedPrecondition) << small.status().ToString();
  EXPECT_EQ(small.status().reason(), Reason::kBadResponse);
  EXPECT_NE(small.status().message().find("encryption scope"), std::string::npos);
  std::string ours = proxy.Captured().substr(before);
  EXPECT_EQ(HeaderLines(ours, "x-ms-encryption-scope"),
            std::vector<std::string>{"x-ms-encryption-scope: scope1"});
  std::vector<std::string> policy = HeaderLines(ours, "x-ms-immutability-policy");
  ASSERT_EQ(policy.size(), 2u) << ours.substr(0, 3000);
  // Same header names and mode as the SDK; the date is ours (now + 1 day), RFC 1123 as the
  // SDK writes it.
  auto names = [](const std::vector<std::string>& lines) {
    std::set<std::string> out;
    for (const std::string& l : lines) out.insert(l.substr(0, l.find(':')));
    return out;
  };
  EXPECT_EQ(names(policy), names(sdk_policy));
  for (const std::string& line : sdk_policy) {
    if (line.starts_with("x-ms-immutability-policy-mode")) {
      EXPECT_NE(std::find(policy.begin(), policy.end(), line), policy.end()) << line;
    } else {
      EXPECT_NE(line.find("gmt"), std::string::npos) << line;  // RFC 1123, like ours
    }
  }
  RunResult props = azurite_.Check({"props", "backups", "ours.snap"});
  EXPECT_NE(props.out.find("\"exists\":false"), std::string::npos) << props.out;

  // Blocks: every Put Block carries the scope, the Put Block List scope and policy.
  before = proxy.Captured().size();
  std::string big(6 << 20, 'b');
  Result<ObjectInfo> blocks = Upload(store->get(), "big.snap", big);
  ASSERT_FALSE(blocks.ok());
  ours = proxy.Captured().substr(before);
  size_t put_blocks = 0;
  for (size_t p = ours.find("comp=block&"); p != std::string::npos;
       p = ours.find("comp=block&", p + 1)) {
    ++put_blocks;
  }
  EXPECT_EQ(put_blocks, 2u);
  EXPECT_EQ(HeaderLines(ours, "x-ms-encryption-scope").size(), 3u) << ours.substr(0, 2000);
  EXPECT_EQ(HeaderLines(ours, "x-ms-immutability-policy").size(), 2u);
}

}  // namespace
}  // namespace bao::storage
