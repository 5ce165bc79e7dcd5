// The S3 provider against a real MinIO server, every result cross-checked with the AWS CLI.
#include "storage/s3_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/sigv4.h"
#include "storage/target.h"
#include "support/fault_proxy.h"
#include "support/minio.h"
#include "support/testing.h"

namespace bao::storage {
namespace {

using bao::testing::MinioServer;
using bao::testing::RunResult;
using bao::testing::TcpProxy;
using bao::testing::TempDir;

constexpr uint64_t kPart = 5 << 20;

std::string RandomData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(4, n - i));
  }
  return out;
}

// Streams `data` in 1 MiB appends and commits.
Result<ObjectInfo> Upload(Store* store, const std::string& key, const std::string& data) {
  BAO_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> w, store->NewWriter(Context(), key));
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    BAO_RETURN_IF_ERROR(w->Append(Context(), std::string_view(data).substr(off, 1 << 20)));
  }
  return w->Commit(Context(), CommitInfo{data.size(), crypto::Sha256Hex(data)});
}

Result<std::string> ReadAll(Store* store, const std::string& key, uint64_t offset = 0) {
  std::string out;
  BAO_RETURN_IF_ERROR(store->Read(Context(), key, offset, [&](std::string_view chunk) {
    out.append(chunk);
    return Status::Ok();
  }));
  return out;
}

class S3StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    minio_ = new MinioServer();
    std::string error;
    if (!minio_->Start(&error)) {
      start_error_ = new std::string(error);
    }
  }
  static void TearDownTestSuite() {
    delete minio_;
    minio_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    bucket_ = "t-" + crypto::RandomHex(8);
    std::string error;
    ASSERT_TRUE(minio_->CreateBucket(bucket_, &error)) << error;
    testing::WriteText(creds_.File("accessKeyId"), minio_->access_key() + "\n");
    testing::WriteText(creds_.File("secretAccessKey"), minio_->secret_key() + "\n");
  }

  TargetConfig Target(const std::string& endpoint = "") const {
    TargetConfig t;
    t.provider = "s3";
    t.endpoint = endpoint.empty() ? minio_->endpoint() : endpoint;
    t.bucket = bucket_;
    t.use_path_style = true;
    t.credentials_dir = creds_.path();
    t.part_size = kPart;
    t.concurrency = 3;
    return t;
  }
  static S3Options FastRetries(int attempts = 4) {
    S3Options o;
    o.retry.max_attempts = attempts;
    o.retry.initial_backoff = std::chrono::milliseconds(20);
    o.retry.max_backoff = std::chrono::milliseconds(100);
    o.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    return o;
  }
  std::unique_ptr<S3Store> Open(const TargetConfig& t, const S3Options& o = FastRetries()) {
    Result<std::unique_ptr<S3Store>> s = OpenS3StoreWithOptions(t, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  RunResult Aws(const std::vector<std::string>& args) { return minio_->Aws(args); }
  // Both "no object" and "no unfinished multipart upload" hold for `key`.
  void ExpectNothingLeft(const std::string& key) {
    RunResult head = Aws({"s3api", "head-object", "--bucket", bucket_, "--key", key});
    EXPECT_NE(head.exit_code, 0) << "object exists: " << head.out;
    RunResult uploads = Aws({"s3api", "list-multipart-uploads", "--bucket", bucket_});
    EXPECT_EQ(uploads.exit_code, 0) << uploads.err;
    EXPECT_EQ(uploads.out.find("UploadId"), std::string::npos) << uploads.out;
  }
  // The SHA-256 recorded for `key` as another S3 client sees it: the x-amz-meta-sha256 of an
  // object uploaded in one request, else the "<key>.sha256" side object written before a
  // multipart upload was completed.
  std::string RecordedSha256(const std::string& key, const nlohmann::json& head) {
    if (head.contains("Metadata") && head["Metadata"].contains("sha256")) {
      return head["Metadata"]["sha256"];
    }
    TempDir out;
    RunResult get = Aws({"s3", "cp", "s3://" + bucket_ + "/" + key + ".sha256", out.File("s")});
    if (get.exit_code != 0) return "(none: " + get.err + ")";
    std::string text = testing::ReadText(out.File("s"));
    size_t slash = key.rfind('/');
    EXPECT_EQ(text.substr(64), "  " + key.substr(slash == std::string::npos ? 0 : slash + 1) +
                                   "\n");  // sha256sum's format
    return text.substr(0, 64);
  }
  // Checks with the AWS CLI that `key` holds exactly `data` and carries its SHA-256.
  void ExpectStoredByCli(const std::string& key, const std::string& data) {
    RunResult head = Aws({"s3api", "head-object", "--bucket", bucket_, "--key", key});
    ASSERT_EQ(head.exit_code, 0) << head.err;
    auto meta = nlohmann::json::parse(head.out, nullptr, false);
    ASSERT_TRUE(meta.is_object()) << head.out;
    EXPECT_EQ(meta["ContentLength"], data.size());
    EXPECT_EQ(RecordedSha256(key, meta), crypto::Sha256Hex(data)) << head.out;
    TempDir out;
    RunResult get = Aws({"s3", "cp", "s3://" + bucket_ + "/" + key, out.File("obj")});
    ASSERT_EQ(get.exit_code, 0) << get.err;
    std::string got = testing::ReadText(out.File("obj"));
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data) << "bytes differ";
  }

  // `key` has the full-object CRC-32C of `data` as MinIO computed it, and is still the
  // multipart object of `parts` parts (its ETag ends in "-<parts>"): recording the SHA-256
  // by a self-copy rewrote only metadata, not the bytes.
  void ExpectFullObjectCrc32cAndPartsKept(const std::string& key, const std::string& data,
                                          int parts) {
    RunResult head = Aws(
        {"s3api", "head-object", "--checksum-mode", "ENABLED", "--bucket", bucket_, "--key", key});
    ASSERT_EQ(head.exit_code, 0) << head.err;
    auto meta = nlohmann::json::parse(head.out, nullptr, false);
    ASSERT_TRUE(meta.is_object()) << head.out;
    uint32_t crc = crypto::Crc32c(0, data);
    const char be[4] = {static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
                        static_cast<char>(crc >> 8), static_cast<char>(crc)};
    EXPECT_EQ(meta.value("ChecksumCRC32C", ""), crypto::Base64Encode(std::string_view(be, 4)))
        << head.out;
    EXPECT_EQ(meta.value("ChecksumType", ""), "FULL_OBJECT") << head.out;
    std::string etag = meta.value("ETag", "");
    std::string suffix = "-" + std::to_string(parts) + "\"";
    EXPECT_TRUE(etag.size() > suffix.size() &&
                etag.compare(etag.size() - suffix.size(), suffix.size(), suffix) == 0)
        << "ETag " << etag << ": the object was rewritten";
  }

  static MinioServer* minio_;
  static std::string* start_error_;
  std::string bucket_;
  TempDir creds_;
};

MinioServer* S3StoreTest::minio_ = nullptr;
std::string* S3StoreTest::start_error_ = nullptr;

TEST_F(S3StoreTest, MultipartUploadOf9PartsAtConcurrency10ReadsBackByteIdentical) {
  TargetConfig t = Target();
  t.concurrency = 10;
  TcpProxy proxy(minio_->port());
  proxy.Watch("?partNumber=");
  t.endpoint = proxy.endpoint();
  Result<std::unique_ptr<Store>> store = OpenStore(t);  // through the provider dispatch
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::string data = RandomData(42 * (1 << 20) + 12345, 1);  // 9 parts of 5 MiB
  Result<ObjectInfo> info = Upload(store->get(), "ns/c/2025-01-15T03-00-00Z-abcd1234.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, crypto::Sha256Hex(data));
  ExpectStoredByCli("ns/c/2025-01-15T03-00-00Z-abcd1234.snap", data);
  EXPECT_EQ(proxy.Seen(), 9);  // nine UploadPart requests
  ExpectFullObjectCrc32cAndPartsKept("ns/c/2025-01-15T03-00-00Z-abcd1234.snap", data, 9);
  // Part bodies go unsigned; their CRC-32C header is what the server checks.
  std::string sent = proxy.Captured();
  EXPECT_NE(sent.find("x-amz-content-sha256: UNSIGNED-PAYLOAD"), std::string::npos);
  EXPECT_NE(sent.find("x-amz-checksum-crc32c: "), std::string::npos);
  EXPECT_NE(sent.find("x-amz-checksum-mode: ENABLED"), std::string::npos);  // the final HEAD
  Result<std::string> back = ReadAll(store->get(), "ns/c/2025-01-15T03-00-00Z-abcd1234.snap");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == data);
  Result<ObjectInfo> stat = (*store)->Stat(Context(), "ns/c/2025-01-15T03-00-00Z-abcd1234.snap");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->sha256, crypto::Sha256Hex(data));
  EXPECT_EQ(stat->size, data.size());
  ExpectNothingLeft("no-such-key");
}

TEST_F(S3StoreTest, MultipartAtConcurrency1) {
  TargetConfig t = Target();
  t.concurrency = 1;
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  std::string data = RandomData(3 * kPart + 7, 2);
  Result<ObjectInfo> info = Upload(store.get(), "c1.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ExpectStoredByCli("c1.snap", data);
}

TEST_F(S3StoreTest, SmallObjectGoesUpInOnePut) {
  auto store = Open(Target());
  ASSERT_NE(store, nullptr);
  std::string data = RandomData(kPart, 3);  // exactly one part: a single PUT
  ASSERT_TRUE(Upload(store.get(), "one/part.snap", data).ok());
  ExpectStoredByCli("one/part.snap", data);
  RunResult head = Aws({"s3api", "head-object", "--bucket", bucket_, "--key", "one/part.snap"});
  EXPECT_EQ(head.out.find("-1\\\""), std::string::npos) << "multipart ETag for a single part";
  // Empty objects work too.
  Result<ObjectInfo> empty = Upload(store.get(), "empty.snap", "");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  Result<std::string> back = ReadAll(store.get(), "empty.snap");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, "");
}

TEST_F(S3StoreTest, ListsAndReadsObjectsWrittenByTheAwsCli) {
  TempDir src;
  std::string a = RandomData(300000, 4), b = RandomData(1000, 5);
  testing::WriteText(src.File("a"), a);
  testing::WriteText(src.File("b"), b);
  ASSERT_EQ(Aws({"s3", "cp", src.File("a"), "s3://" + bucket_ + "/p/x/a b+c.snap"}).exit_code, 0);
  ASSERT_EQ(Aws({"s3", "cp", src.File("b"), "s3://" + bucket_ + "/p/y.snap"}).exit_code, 0);
  ASSERT_EQ(Aws({"s3", "cp", src.File("b"), "s3://" + bucket_ + "/q.snap"}).exit_code, 0);
  auto store = Open(Target());
  ASSERT_NE(store, nullptr);
  std::vector<ObjectInfo> listed;
  ASSERT_TRUE(store
                  ->List(Context(), "p/",
                         [&](const ObjectInfo& i) {
                           listed.push_back(i);
                           return Status::Ok();
                         })
                  .ok());
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].key, "p/x/a b+c.snap");
  EXPECT_EQ(listed[0].size, a.size());
  EXPECT_EQ(listed[1].key, "p/y.snap");
  Result<std::string> got = ReadAll(store.get(), "p/x/a b+c.snap");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == a);
  Result<std::string> tail = ReadAll(store.get(), "p/x/a b+c.snap", 299000);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(*tail, a.substr(299000));
  Result<ObjectInfo> stat = store->Stat(Context(), "q.snap");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->sha256, "");  // the CLI recorded no checksum
  EXPECT_EQ(store->Stat(Context(), "p/none").status().code(), Code::kNotFound);
  EXPECT_EQ(ReadAll(store.get(), "p/none").status().code(), Code::kNotFound);
  ASSERT_TRUE(store->Delete(Context(), "q.snap").ok());
  ASSERT_TRUE(store->Delete(Context(), "q.snap").ok());  // absent: still fine
  EXPECT_NE(Aws({"s3api", "head-object", "--bucket", bucket_, "--key", "q.snap"}).exit_code, 0);
}

TEST_F(S3StoreTest, WrongSecretKeyIsRejectedClearlyAndWritesNothing) {
  testing::WriteText(creds_.File("secretAccessKey"), "definitely-the-wrong-secret\n");
  auto store = Open(Target());
  ASSERT_NE(store, nullptr);
  Result<ObjectInfo> r = Upload(store.get(), "x.snap", RandomData(1000, 6));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kUnauthenticated);
  EXPECT_EQ(r.status().stage(), Stage::kStorage);
  EXPECT_EQ(r.status().http_status(), 403);
  EXPECT_NE(r.status().message().find("S3 rejected the credentials"), std::string::npos)
      << r.status().message();
  // It names the credential that was refused: the access key id and where it came from.
  EXPECT_NE(r.status().message().find("access key " + minio_->access_key() +
                                      " (from credentials directory " + creds_.path() + ")"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find("definitely-the-wrong-secret"), std::string::npos);
  ExpectNothingLeft("x.snap");
}

TEST_F(S3StoreTest, MissingBucketIsNamed) {
  TargetConfig t = Target();
  t.bucket = "no-such-bucket-" + crypto::RandomHex(4);
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  Result<std::unique_ptr<ObjectWriter>> w = store->NewWriter(Context(), "x.snap");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kNotFound);
  EXPECT_EQ(w.status().reason(), Reason::kNotFound);
  EXPECT_EQ(w.status().stage(), Stage::kStorage);
  EXPECT_EQ(w.status().http_status(), 404);
  EXPECT_NE(w.status().message().find("S3 bucket \"" + t.bucket + "\" does not exist at " +
                                      minio_->endpoint()),
            std::string::npos)
      << w.status().message();
  Status l = store->List(Context(), "", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_EQ(l.code(), Code::kNotFound) << l.ToString();
}

TEST_F(S3StoreTest, EndpointDownIsUnavailableNamingTheEndpoint) {
  std::string endpoint = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  auto store = Open(Target(endpoint));
  ASSERT_NE(store, nullptr);
  Result<std::unique_ptr<ObjectWriter>> w = store->NewWriter(Context(), "x.snap");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kUnavailable);
  EXPECT_EQ(w.status().reason(), Reason::kUnreachable);
  EXPECT_EQ(w.status().stage(), Stage::kStorage);
  EXPECT_NE(w.status().message().find("S3 endpoint " + endpoint + " is unreachable"),
            std::string::npos)
      << w.status().message();
}

TEST_F(S3StoreTest, ConnectionCutInTheMiddleOfAPartIsRetried) {
  TcpProxy proxy(minio_->port());
  proxy.CutAfter("partNumber=3&", 2 << 20, 1);  // 2 MiB into part 3's body
  auto store = Open(Target(proxy.endpoint()));
  ASSERT_NE(store, nullptr);
  std::string data = RandomData(4 * kPart + 100, 7);
  Result<ObjectInfo> info = Upload(store.get(), "cut.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(proxy.cuts(), 1);
  ExpectStoredByCli("cut.snap", data);
}

TEST_F(S3StoreTest, CorruptedPartBodyIsRejectedByItsCrc32cAndResent) {
  TcpProxy proxy(minio_->port());
  proxy.CorruptAfter("partNumber=2&", 1 << 20, 1);  // one bit, 1 MiB into part 2's body
  proxy.Watch("partNumber=2&");
  auto store = Open(Target(proxy.endpoint()));
  ASSERT_NE(store, nullptr);
  std::string data = RandomData(3 * kPart + 100, 13);
  Result<ObjectInfo> info = Upload(store.get(), "corrupt.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_EQ(proxy.Seen(), 2);  // MinIO refused the damaged part; it was sent again
  ExpectStoredByCli("corrupt.snap", data);
  ExpectFullObjectCrc32cAndPartsKept("corrupt.snap", data, 4);
}

TEST_F(S3StoreTest, PersistentCorruptionFailsAndLeavesNothing) {
  TcpProxy proxy(minio_->port());
  proxy.CorruptAfter("partNumber=2&", 1 << 20, 1000);
  auto store = Open(Target(proxy.endpoint()), FastRetries(3));
  ASSERT_NE(store, nullptr);
  Result<ObjectInfo> info = Upload(store.get(), "corrupt2.snap", RandomData(3 * kPart, 14));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kUnavailable) << info.status().ToString();
  EXPECT_EQ(info.status().reason(), Reason::kChecksumMismatch);
  EXPECT_NE(info.status().message().find("part 2"), std::string::npos) << info.status().message();
  EXPECT_NE(info.status().message().find("ChecksumMismatch"), std::string::npos)
      << info.status().message();
  EXPECT_EQ(proxy.cuts(), 3);
  ExpectNothingLeft("corrupt2.snap");
}

TEST_F(S3StoreTest, SignedPartPayloadsAreAnOption) {
  S3Options o = FastRetries();
  o.sign_part_payloads = true;
  TcpProxy proxy(minio_->port());
  proxy.CorruptAfter("partNumber=1&", 1 << 20, 1);
  auto store = Open(Target(proxy.endpoint()), o);
  ASSERT_NE(store, nullptr);
  std::string data = RandomData(2 * kPart + 1, 15);
  Result<ObjectInfo> info = Upload(store.get(), "signed.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(proxy.cuts(), 1);
  std::string sent = proxy.Captured();
  EXPECT_EQ(sent.find("UNSIGNED-PAYLOAD"), std::string::npos);
  EXPECT_NE(sent.find("x-amz-checksum-crc32c: "), std::string::npos);
  ExpectStoredByCli("signed.snap", data);
  ExpectFullObjectCrc32cAndPartsKept("signed.snap", data, 3);
}

TEST_F(S3StoreTest, ReadResumesAfterADroppedConnection) {
  auto direct = Open(Target());
  ASSERT_NE(direct, nullptr);
  std::string data = RandomData(3 * kPart, 8);
  ASSERT_TRUE(Upload(direct.get(), "resume.snap", data).ok());
  TcpProxy proxy(minio_->port());
  proxy.CutAfter("GET /" + bucket_ + "/resume.snap", 4 << 20, 1);
  auto store = Open(Target(proxy.endpoint()));
  ASSERT_NE(store, nullptr);
  std::string got;
  Status st = store->Read(Context(), "resume.snap", 0, [&](std::string_view chunk) {
    got.append(chunk);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_NE(proxy.Captured().find("Range: bytes="), std::string::npos);
}

TEST_F(S3StoreTest, PersistentFailureAbortsTheUploadAndLeavesNothing) {
  TcpProxy proxy(minio_->port());
  proxy.CutAfter("partNumber=2&", 100000, 1000);  // part 2 never gets through
  auto store = Open(Target(proxy.endpoint()), FastRetries(3));
  ASSERT_NE(store, nullptr);
  std::string data = RandomData(4 * kPart, 9);
  Result<ObjectInfo> info = Upload(store.get(), "fail.snap", data);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kUnavailable) << info.status().ToString();
  EXPECT_NE(info.status().message().find("part 2"), std::string::npos) << info.status().message();
  EXPECT_EQ(proxy.cuts(), 3);  // three attempts, each cut
  ExpectNothingLeft("fail.snap");
}

TEST_F(S3StoreTest, CancellationAbortsTheMultipartUpload) {
  auto store = Open(Target());
  ASSERT_NE(store, nullptr);
  CancelSource source;  // what SIGTERM cancels
  Context ctx(&source);
  Result<std::unique_ptr<ObjectWriter>> w = store->NewWriter(ctx, "cancel.snap");
  ASSERT_TRUE(w.ok());
  std::string chunk = RandomData(1 << 20, 10);
  for (int i = 0; i < 11; ++i) {
    ASSERT_TRUE((*w)->Append(ctx, chunk).ok());  // parts 1, 2 dispatched
  }
  RunResult uploads = Aws({"s3api", "list-multipart-uploads", "--bucket", bucket_});
  EXPECT_NE(uploads.out.find("cancel.snap"), std::string::npos) << uploads.out;
  source.Cancel();
  Status st = (*w)->Append(ctx, chunk);
  EXPECT_EQ(st.code(), Code::kAborted) << st.ToString();
  EXPECT_EQ(st.reason(), Reason::kCancelled);
  EXPECT_EQ(st.stage(), Stage::kStorage);
  EXPECT_FALSE((*w)->Commit(Context(), CommitInfo{12 << 20, "x"}).ok());
  ExpectNothingLeft("cancel.snap");
}

TEST_F(S3StoreTest, ListsMoreThan1000ObjectsAcrossPagesAndDeletesThemInBatches) {
  auto store = Open(Target());
  ASSERT_NE(store, nullptr);
  constexpr int kCount = 1105;
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kCount; i = next++) {
        char key[32];
        std::snprintf(key, sizeof key, "many/%05d.snap", i);
        if (!Upload(store.get(), key, std::to_string(i)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<std::string> keys;
  ASSERT_TRUE(store
                  ->List(Context(), "many/",
                         [&](const ObjectInfo& i) {
                           keys.push_back(i.key);
                           return Status::Ok();
                         })
                  .ok());
  ASSERT_EQ(keys.size(), static_cast<size_t>(kCount));
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(keys.front(), "many/00000.snap");
  EXPECT_EQ(keys.back(), "many/01104.snap");
  // An error from the callback stops the listing.
  int seen = 0;
  Status stopped = store->List(Context(), "many/", [&](const ObjectInfo&) {
    return ++seen == 3 ? Aborted("enough") : Status::Ok();
  });
  EXPECT_EQ(stopped.code(), Code::kAborted);
  EXPECT_EQ(seen, 3);
  ASSERT_TRUE(store->DeleteMany(Context(), keys).ok());
  RunResult left = Aws(
      {"s3api", "list-objects-v2", "--bucket", bucket_, "--prefix", "many/", "--max-items", "5"});
  EXPECT_EQ(left.out.find("Contents"), std::string::npos) << left.out;
}

// MinIO's STS AssumeRole (signed with the root credentials) yields temporary credentials with a
// session token; the store signs with them, and a broken token is refused in plain words.
TEST_F(S3StoreTest, SessionTokenFromMinioSts) {
  http::Request req;
  req.method = "POST";
  req.url = minio_->endpoint() + "/";
  req.body = "Action=AssumeRole&DurationSeconds=3600&Version=2011-06-15";
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  SignHeaders("POST", "127.0.0.1:" + std::to_string(minio_->port()), "/", {},
              crypto::Sha256Hex(req.body),
              AwsCredentials{minio_->access_key(), minio_->secret_key(), "", {}}, "us-east-1",
              "sts", SystemClock().Now(), &req.headers);
  http::Client client;
  Result<http::Response> resp = client.Do(req);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  ASSERT_EQ(resp->status, 200) << resp->body;
  auto element = [&](const std::string& name) {
    size_t a = resp->body.find("<" + name + ">"), b = resp->body.find("</" + name + ">");
    return a == std::string::npos ? std::string()
                                  : resp->body.substr(a + name.size() + 2, b - a - name.size() - 2);
  };
  std::string key_id = element("AccessKeyId"), secret = element("SecretAccessKey"),
              token = element("SessionToken");
  ASSERT_FALSE(token.empty()) << resp->body;
  testing::WriteText(creds_.File("accessKeyId"), key_id);
  testing::WriteText(creds_.File("secretAccessKey"), secret);
  testing::WriteText(creds_.File("sessionToken"), token);
  TcpProxy proxy(minio_->port());
  auto store = Open(Target(proxy.endpoint()));
  ASSERT_NE(store, nullptr);
  std::string data = RandomData(2 * kPart + 1, 11);
  Result<ObjectInfo> info = Upload(store.get(), "sts.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ExpectStoredByCli("sts.snap", data);
  EXPECT_NE(proxy.Captured().find("x-amz-security-token: " + token), std::string::npos);
  EXPECT_NE(proxy.Captured().find("Credential=" + key_id + "/"), std::string::npos);

  testing::WriteText(creds_.File("sessionToken"), token.substr(0, token.size() - 4) + "AAAA");
  auto broken = Open(Target());
  ASSERT_NE(broken, nullptr);
  Result<ObjectInfo> refused = Upload(broken.get(), "sts2.snap", data);
  EXPECT_EQ(refused.status().code(), Code::kUnauthenticated) << refused.status().ToString();
  ExpectNothingLeft("sts2.snap");
}

// The checksum is recorded before the multipart upload is completed: held exactly at the
// CompleteMultipartUpload request, the bucket shows the side object and no object; cancelled
// there, no object appears (the orphan side object is hidden from listings), and a finished
// multipart object is a single version, never a self-copy.
TEST_F(S3StoreTest, ChecksumIsRecordedBeforeTheObjectIsPublished) {
  testing::HttpFaultProxy proxy(minio_->port());
  ASSERT_GT(proxy.port(), 0);
  int hold = proxy.AddRule(
      testing::HttpFaultProxy::StallAfter(0, testing::HttpFaultProxy::Where::kRequestBody)
          .On("POST", "uploadId="));
  auto store = Open(Target(proxy.url()));
  ASSERT_NE(store, nullptr);
  const std::string data = RandomData(2 * kPart + 5, 21);
  CancelSource cancel;
  Result<ObjectInfo> result = Internal("not run");
  std::thread writer([&] {
    Context ctx(&cancel);
    Result<std::unique_ptr<ObjectWriter>> w = store->NewWriter(ctx, "held.snap");
    if (!w.ok()) {
      result = w.status();
      return;
    }
    for (size_t off = 0; off < data.size(); off += 1 << 20) {
      Status s = (*w)->Append(ctx, std::string_view(data).substr(off, 1 << 20));
      if (!s.ok()) {
        result = s;
        return;
      }
    }
    result = (*w)->Commit(ctx, CommitInfo{data.size(), crypto::Sha256Hex(data)});
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return proxy.applied(hold) > 0; }, std::chrono::seconds(60)));
  // Held at the commit: the checksum is there, the object is not.
  RunResult side = Aws({"s3api", "head-object", "--bucket", bucket_, "--key", "held.snap.sha256"});
  EXPECT_EQ(side.exit_code, 0) << side.err;
  RunResult object = Aws({"s3api", "head-object", "--bucket", bucket_, "--key", "held.snap"});
  EXPECT_NE(object.exit_code, 0) << object.out;
  cancel.Cancel();
  writer.join();  // the upload is aborted before the held request could go on
  proxy.ClearRule(hold);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().reason(), Reason::kCancelled) << result.status().ToString();
  ExpectNothingLeft("held.snap");
  std::vector<std::string> listed;
  ASSERT_TRUE(store->List(Context(), "", [&](const ObjectInfo& i) {
                     listed.push_back(i.key);
                     return Status::Ok();
                   }).ok());
  EXPECT_TRUE(listed.empty()) << listed.front();

  // Completed: one version, the checksum beside it, and both go together.
  Result<ObjectInfo> done = Upload(store.get(), "done.snap", data);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ExpectStoredByCli("done.snap", data);
  Result<ObjectInfo> stat = store->Stat(Context(), "done.snap");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->sha256, crypto::Sha256Hex(data));
  ASSERT_TRUE(store->Delete(Context(), "done.snap").ok());
  RunResult gone = Aws({"s3api", "head-object", "--bucket", bucket_, "--key", "done.snap.sha256"});
  EXPECT_NE(gone.exit_code, 0) << "the side object outlived its object";
  // A checksum already there (an earlier crash's, or another writer's) is never replaced.
  EXPECT_EQ(Upload(store.get(), "held.snap", data).status().code(), Code::kAlreadyExists);
}

}  // namespace
}  // namespace bao::storage
