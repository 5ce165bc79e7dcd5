// Encryption at rest and object lock of the S3 provider against a real MinIO with its built-in
// KMS (MINIO_KMS_SECRET_KEY) and Object Lock buckets; every result cross-checked with the AWS
// CLI.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "backup/prune.h"
#include "common/time.h"
#include "crypto/crypto.h"
#include "storage/s3_store.h"
#include "storage/target.h"
#include "support/minio.h"
#include "support/testing.h"

namespace bao::storage {
namespace {

using bao::testing::MinioServer;
using bao::testing::RunResult;
using bao::testing::TempDir;

constexpr uint64_t kPart = 5 << 20;
constexpr const char* kKmsKey = "bao-test-key";

std::string RandomData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(4, n - i));
  }
  return out;
}

Result<ObjectInfo> Upload(Store* store, const std::string& key, const std::string& data) {
  BAO_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> w, store->NewWriter(Context(), key));
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    BAO_RETURN_IF_ERROR(w->Append(Context(), std::string_view(data).substr(off, 1 << 20)));
  }
  return w->Commit(Context(), CommitInfo{data.size(), crypto::Sha256Hex(data)});
}

Result<std::string> ReadAll(Store* store, const std::string& key) {
  std::string out;
  BAO_RETURN_IF_ERROR(store->Read(Context(), key, 0, [&](std::string_view chunk) {
    out.append(chunk);
    return Status::Ok();
  }));
  return out;
}

class S3ProtectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    minio_ = new MinioServer();
    minio_->SetKmsSecretKey(std::string(kKmsKey) + ":AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    std::string error;
    if (!minio_->Start(&error)) start_error_ = new std::string(error);
  }
  static void TearDownTestSuite() {
    delete minio_;
    minio_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    bucket_ = "p-" + crypto::RandomHex(8);
    testing::WriteText(creds_.File("accessKeyId"), minio_->access_key() + "\n");
    testing::WriteText(creds_.File("secretAccessKey"), minio_->secret_key() + "\n");
  }

  TargetConfig Target() const {
    TargetConfig t;
    t.provider = "s3";
    t.endpoint = minio_->endpoint();
    t.bucket = bucket_;
    t.use_path_style = true;
    t.credentials_dir = creds_.path();
    t.part_size = kPart;
    t.concurrency = 2;
    return t;
  }
  std::unique_ptr<S3Store> Open(const TargetConfig& t, const Clock* clock = nullptr) {
    S3Options o;
    o.retry.max_attempts = 3;
    o.retry.initial_backoff = std::chrono::milliseconds(20);
    o.retry.max_backoff = std::chrono::milliseconds(100);
    o.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    o.clock = clock;
    Status valid = ValidateTarget(t, "target");
    EXPECT_TRUE(valid.ok()) << valid.ToString();
    Result<std::unique_ptr<S3Store>> s = OpenS3StoreWithOptions(t, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  nlohmann::json Head(const std::string& key) {
    RunResult r = minio_->Aws({"s3api", "head-object", "--bucket", bucket_, "--key", key});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  }

  static MinioServer* minio_;
  static std::string* start_error_;
  std::string bucket_;
  TempDir creds_;
};

MinioServer* S3ProtectTest::minio_ = nullptr;
std::string* S3ProtectTest::start_error_ = nullptr;

// SSE-S3: a single PutObject and a multipart upload both land encrypted (the AWS CLI's
// head-object says AES256, for the checksum side object too) and read back byte for byte.
TEST_F(S3ProtectTest, SseS3EncryptsEveryObjectAndItsChecksum) {
  std::string error;
  ASSERT_TRUE(minio_->CreateBucket(bucket_, &error)) << error;
  TargetConfig t = Target();
  t.sse = "AES256";
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  for (size_t size : {size_t{1000}, size_t{12} << 20}) {
    std::string key = "sse-s3/" + std::to_string(size);
    std::string data = RandomData(size, static_cast<uint32_t>(size));
    Result<ObjectInfo> info = Upload(store.get(), key, data);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(Head(key).value("ServerSideEncryption", ""), "AES256") << key;
    Result<std::string> back = ReadAll(store.get(), key);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(crypto::Sha256Hex(*back), crypto::Sha256Hex(data));
  }
  // Multipart: the checksum side object is encrypted too.
  EXPECT_EQ(Head("sse-s3/" + std::to_string(size_t{12} << 20) + ".sha256")
                .value("ServerSideEncryption", ""),
            "AES256");
}

// SSE-KMS with a named key of MinIO's KMS: the object reports aws:kms and that key.
TEST_F(S3ProtectTest, SseKmsUsesTheNamedKey) {
  std::string error;
  ASSERT_TRUE(minio_->CreateBucket(bucket_, &error)) << error;
  TargetConfig t = Target();
  t.sse = "aws:kms";
  t.kms_key_id = kKmsKey;
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  for (size_t size : {size_t{1000}, size_t{11} << 20}) {
    std::string key = "sse-kms/" + std::to_string(size);
    std::string data = RandomData(size, 7);
    Result<ObjectInfo> info = Upload(store.get(), key, data);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    nlohmann::json head = Head(key);
    EXPECT_EQ(head.value("ServerSideEncryption", ""), "aws:kms") << head.dump();
    EXPECT_NE(head.value("SSEKMSKeyId", "").find(kKmsKey), std::string::npos) << head.dump();
    Result<std::string> back = ReadAll(store.get(), key);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, data);
    Result<ObjectInfo> stat = store->Stat(Context(), key);
    ASSERT_TRUE(stat.ok()) << stat.status().ToString();
    EXPECT_EQ(stat->sha256, crypto::Sha256Hex(data));
  }
}

// objectLock on a bucket without Object Lock: a configuration the bucket cannot honour, said
// as such (machine-readable), and nothing is left under the key.
TEST_F(S3ProtectTest, ObjectLockOnAnUnlockedBucketSaysTheBucketNeedsObjectLock) {
  std::string error;
  ASSERT_TRUE(minio_->CreateBucket(bucket_, &error)) << error;
  TargetConfig t = Target();
  t.object_lock_mode = "GOVERNANCE";
  t.object_lock_retain_days = 1;
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  for (size_t size : {size_t{1000}, size_t{11} << 20}) {
    Result<ObjectInfo> info = Upload(store.get(), "x/" + std::to_string(size), RandomData(size, 1));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.status().code(), Code::kFailedPrecondition) << info.status().ToString();
    EXPECT_EQ(info.status().reason(), Reason::kInvalidValue);
    EXPECT_EQ(info.status().stage(), Stage::kStorage);
    ASSERT_NE(info.status().payload("bucketObjectLock"), nullptr) << info.status().ToString();
    EXPECT_EQ(*info.status().payload("bucketObjectLock"), "disabled");
    EXPECT_NE(info.status().message().find("Object Lock enabled"), std::string::npos);
  }
  RunResult list = minio_->Aws({"s3api", "list-objects-v2", "--bucket", bucket_});
  EXPECT_EQ(list.out.find("\"Key\""), std::string::npos) << list.out;
}

// Object lock, end to end: the backups are locked (the AWS CLI sees the retention); deleting
// one with the same credentials fails, through the store (Reason::kLocked with the date) and
// through the AWS CLI; prune skips it, succeeds and reports it locked; once the retention has
// ended, the next prune deletes it. The retention is made to end in seconds with a clock of
// the test's (a 1-day lock taken "a day minus 60 s ago").
TEST_F(S3ProtectTest, LockedBackupsResistDeleteAndArePrunedOnceExpired) {
  std::string error;
  ASSERT_TRUE(minio_->CreateLockedBucket(bucket_, &error)) << error;
  TargetConfig t = Target();
  t.object_lock_mode = "GOVERNANCE";
  t.object_lock_retain_days = 1;
  ManualClock clock(SystemClock().Now() - std::chrono::hours(24) + std::chrono::seconds(60));
  auto store = Open(t, &clock);
  ASSERT_NE(store, nullptr);
  // Two backups of ns/bao, the older one a multipart upload. Not snapshot archives: prune's
  // verification is told the newest was just stored.
  const std::string old_key = "ns/bao/2025-01-01T00-00-00Z-aaaaaaaa.snap";
  const std::string new_key = "ns/bao/2025-01-02T00-00-00Z-bbbbbbbb.snap";
  ASSERT_TRUE(Upload(store.get(), old_key, RandomData(11 << 20, 3)).ok());
  Result<ObjectInfo> newest = Upload(store.get(), new_key, RandomData(2000, 4));
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  EXPECT_EQ(newest->lock_mode, "GOVERNANCE");
  EXPECT_GT(newest->locked_until, SystemClock().Now());
  EXPECT_LT(newest->locked_until, SystemClock().Now() + std::chrono::seconds(61));

  Result<ObjectInfo> stat = store->Stat(Context(), old_key);
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->lock_mode, "GOVERNANCE");
  EXPECT_TRUE(stat->LockedAt(SystemClock().Now()));

  // Delete with the same credentials fails (the AWS CLI's too, below).
  Status del = store->Delete(Context(), old_key);
  EXPECT_EQ(del.code(), Code::kFailedPrecondition) << del.ToString();
  EXPECT_EQ(del.reason(), Reason::kLocked);
  ASSERT_NE(del.payload("lockedUntil"), nullptr);
  EXPECT_EQ(*del.payload("lockedUntil"), FormatRfc3339(stat->locked_until));

  // Prune (keep 1): the old backup is locked, skipped; the run succeeds.
  backup::RetentionPolicy policy;
  policy.max_count = 1;
  backup::PruneResult result;
  Status pruned =
      backup::Prune(Context(), store.get(), "", "ns", "bao", policy, SystemClock().Now(), false,
                    &result, backup::kDefaultCleanupAge, new_key);
  ASSERT_TRUE(pruned.ok()) << pruned.ToString();
  ASSERT_EQ(result.locked.size(), 1u) << result.ToJson().dump();
  EXPECT_EQ(result.locked[0].key, old_key);
  EXPECT_EQ(result.locked[0].until, FormatRfc3339(stat->locked_until));
  EXPECT_TRUE(result.deleted.empty());
  nlohmann::json j = result.ToJson();
  EXPECT_EQ(j["locked"], 1);
  EXPECT_EQ(j["lockedKeys"][0]["key"], old_key) << j.dump();

  // The AWS CLI sees the lock (on the checksum side object too) and cannot delete either.
  nlohmann::json head = Head(old_key);
  EXPECT_EQ(head.value("ObjectLockMode", ""), "GOVERNANCE") << head.dump();
  EXPECT_FALSE(head.value("ObjectLockRetainUntilDate", "").empty()) << head.dump();
  EXPECT_EQ(Head(old_key + ".sha256").value("ObjectLockMode", ""), "GOVERNANCE");
  RunResult cli_del = minio_->Aws({"s3api", "delete-object", "--bucket", bucket_, "--key", old_key,
                                   "--version-id", head.value("VersionId", "")});
  if (SystemClock().Now() < stat->locked_until) {
    EXPECT_NE(cli_del.exit_code, 0) << cli_del.out;
  } else {
    ADD_FAILURE() << "the test ran past the lock before the AWS CLI's delete; raise the window";
  }

  // Once the retention ended, a later prune deletes it (polled, with a deadline).
  backup::PruneResult later;
  bool pruned_later = testing::WaitUntil(
      [&] {
        later = backup::PruneResult();
        Status st =
            backup::Prune(Context(), store.get(), "", "ns", "bao", policy, SystemClock().Now(),
                          false, &later, backup::kDefaultCleanupAge, new_key);
        EXPECT_TRUE(st.ok()) << st.ToString();  // locked or deleted, never failed
        return !later.deleted.empty() || !st.ok();
      },
      std::chrono::seconds(180));
  EXPECT_TRUE(pruned_later);
  ASSERT_EQ(later.deleted.size(), 1u) << later.ToJson().dump();
  EXPECT_EQ(later.deleted[0], old_key);
  EXPECT_TRUE(later.locked.empty());
  RunResult gone = minio_->Aws({"s3api", "head-object", "--bucket", bucket_, "--key", old_key});
  EXPECT_NE(gone.exit_code, 0) << gone.out;
  // Its version is gone too (not hidden behind a delete marker).
  RunResult versions =
      minio_->Aws({"s3api", "list-object-versions", "--bucket", bucket_, "--prefix", old_key});
  EXPECT_EQ(versions.out.find("\"VersionId\""), std::string::npos) << versions.out;
}

}  // namespace
}  // namespace bao::storage
