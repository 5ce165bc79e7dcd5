// The GCS provider against the real fake-gcs-server, started by the test on a free loopback
// port. Failures are injected with a TCP proxy between the store and the server.
#include "storage/gcs_store.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/target.h"
#include "support/fake_gcs.h"

namespace bao::storage {
namespace {

using testing::FakeGcsServer;
using testing::FaultProxy;

constexpr uint64_t kChunk = kMinPartSize;  // 5 MiB, a multiple of 256 KiB

std::string RandomData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class GcsStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    unsetenv("STORAGE_EMULATOR_HOST");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    server_ = new FakeGcsServer();
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    ASSERT_TRUE(server_->CreateBucket("backups", &error)) << error;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  std::unique_ptr<Store> Open(const std::string& endpoint, const std::string& bucket = "backups",
                              int page_size = 0) {
    TargetConfig t;
    t.provider = "gcs";
    t.endpoint = endpoint;
    t.bucket = bucket;
    t.part_size = kChunk;
    GcsOptions o;
    o.retry.max_attempts = 4;
    o.retry.initial_backoff = std::chrono::milliseconds(10);
    o.retry.max_backoff = std::chrono::milliseconds(50);
    o.list_page_size = page_size;
    auto s = OpenGcsStore(t, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static Result<ObjectInfo> Upload(Store& store, const std::string& key, const std::string& data,
                                   size_t piece = 1000003) {
    BAO_ASSIGN_OR_RETURN(auto w, store.NewWriter(Context(), key));
    for (size_t off = 0; off < data.size(); off += piece) {
      BAO_RETURN_IF_ERROR(w->Append(Context(), std::string_view(data).substr(off, piece)));
    }
    return w->Commit(Context(), {data.size(), crypto::Sha256Hex(data)});
  }

  static std::string ReadAll(Store& store, const std::string& key, uint64_t offset = 0) {
    std::string out;
    Status st = store.Read(Context(), key, offset, [&](std::string_view c) {
      out.append(c);
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  // An independent read: a plain GET of the media download URL.
  static http::Response RawGet(const std::string& key) {
    http::Client c;
    http::Request req;
    req.url =
        server_->url() + "/download/storage/v1/b/backups/o/" + http::UrlEncode(key) + "?alt=media";
    auto r = c.Do(req);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : http::Response{};
  }

  static FakeGcsServer* server_;
};

FakeGcsServer* GcsStoreTest::server_ = nullptr;

TEST_F(GcsStoreTest, MultiChunkUploadReadsBackIdentical) {
  FaultProxy proxy(server_->port());
  auto store = Open(proxy.url());
  const std::string data = RandomData(2 * kChunk + 777777, 1);
  auto info = Upload(*store, "ns/c1/multi.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, crypto::Sha256Hex(data));

  // Three requests to the session: two full chunks, then the last one with the total.
  const std::string sent = proxy.ClientBytes();
  EXPECT_NE(sent.find("Content-Range: bytes 0-5242879/*"), std::string::npos);
  EXPECT_NE(sent.find("Content-Range: bytes 5242880-10485759/*"), std::string::npos);
  EXPECT_NE(sent.find("Content-Range: bytes 10485760-11263536/11263537"), std::string::npos);

  EXPECT_EQ(ReadAll(*store, "ns/c1/multi.snap"), data);
  EXPECT_EQ(ReadAll(*store, "ns/c1/multi.snap", 6000000), data.substr(6000000));
  http::Response raw = RawGet("ns/c1/multi.snap");
  EXPECT_EQ(raw.status, 200);
  EXPECT_TRUE(raw.body == data);

  auto stat = store->Stat(Context(), "ns/c1/multi.snap");
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->size, data.size());
  EXPECT_EQ(stat->sha256, crypto::Sha256Hex(data));
}

TEST_F(GcsStoreTest, SingleChunkAndEmptyObjects) {
  auto store = Open(server_->url());
  const std::string small = RandomData(1000, 2);
  auto info = Upload(*store, "small.snap", small);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(ReadAll(*store, "small.snap"), small);
  EXPECT_EQ(RawGet("small.snap").body, small);

  const std::string exact = RandomData(kChunk, 3);  // exactly one chunk
  ASSERT_TRUE(Upload(*store, "exact.snap", exact).ok());
  EXPECT_TRUE(RawGet("exact.snap").body == exact);

  auto empty = Upload(*store, "empty.snap", "");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->size, 0u);
  EXPECT_EQ(ReadAll(*store, "empty.snap"), "");
  auto stat = store->Stat(Context(), "empty.snap");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->sha256, crypto::Sha256Hex(""));
}

TEST_F(GcsStoreTest, ListsPastOnePageInKeyOrder) {
  FaultProxy proxy(server_->port());
  auto store = Open(proxy.url(), "backups", /*page_size=*/3);
  std::vector<std::string> keys;
  for (int i = 0; i < 7; ++i) keys.push_back("list/obj-" + std::to_string(i));
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    ASSERT_TRUE(Upload(*store, *it, "x" + *it).ok());
  }
  ASSERT_TRUE(Upload(*store, "listother/a", "a").ok());
  std::vector<std::string> seen;
  Status st = store->List(Context(), "list/", [&](const ObjectInfo& o) {
    seen.push_back(o.key);
    EXPECT_EQ(o.size, 1 + o.key.size());
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seen, keys);
  EXPECT_NE(proxy.ClientBytes().find("pageToken="), std::string::npos);

  // An error from the callback stops the listing and is returned.
  int calls = 0;
  st = store->List(Context(), "list/", [&](const ObjectInfo&) {
    ++calls;
    return Aborted("enough");
  });
  EXPECT_EQ(st.code(), Code::kAborted);
  EXPECT_EQ(calls, 1);
}

TEST_F(GcsStoreTest, DeleteAndNotFound) {
  auto store = Open(server_->url());
  ASSERT_TRUE(Upload(*store, "del/one", "payload").ok());
  ASSERT_TRUE(store->Delete(Context(), "del/one").ok());
  EXPECT_EQ(store->Stat(Context(), "del/one").status().code(), Code::kNotFound);
  EXPECT_EQ(RawGet("del/one").status, 404);
  EXPECT_TRUE(store->Delete(Context(), "del/one").ok());  // already gone: still success
  Result<ObjectInfo> gone = store->Stat(Context(), "del/one");
  EXPECT_EQ(gone.status().reason(), Reason::kNotFound);
  EXPECT_NE(gone.status().message().find("GCS object gs://backups/del/one does not exist"),
            std::string::npos)
      << gone.status().message();
  Status read = store->Read(Context(), "del/one", 0, [](std::string_view) { return Status::Ok(); });
  EXPECT_EQ(read.code(), Code::kNotFound);
}

TEST_F(GcsStoreTest, MissingBucketIsNamed) {
  auto store = Open(server_->url(), "no-such-bucket");
  auto w = store->NewWriter(Context(), "a/b");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kNotFound);
  EXPECT_EQ(w.status().reason(), Reason::kNotFound);
  EXPECT_EQ(w.status().stage(), Stage::kStorage);
  EXPECT_EQ(w.status().http_status(), 404);
  EXPECT_NE(w.status().message().find("\"no-such-bucket\""), std::string::npos)
      << w.status().message();
  Status st = store->List(Context(), "", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Code::kNotFound);
  // An object request answers 404 alike for a missing object and bucket: the store asks.
  Result<ObjectInfo> stat = store->Stat(Context(), "a/b");
  EXPECT_EQ(stat.status().code(), Code::kNotFound);
  EXPECT_NE(stat.status().message().find("bucket \"no-such-bucket\""), std::string::npos)
      << stat.status().message();
  Status del = store->Delete(Context(), "a/b");
  EXPECT_EQ(del.code(), Code::kNotFound) << "deleting from a missing bucket is not a success";
}

TEST_F(GcsStoreTest, NothingVisibleBeforeCommitAndAbortLeavesNothing) {
  auto store = Open(server_->url());
  auto w = store->NewWriter(Context(), "pending/obj");
  ASSERT_TRUE(w.ok());
  const std::string data = RandomData(kChunk + 100, 4);
  ASSERT_TRUE((*w)->Append(Context(), data).ok());
  ASSERT_TRUE((*w)->Append(Context(), data).ok());  // two chunks are now with the server
  EXPECT_EQ(store->Stat(Context(), "pending/obj").status().code(), Code::kNotFound);
  EXPECT_EQ(RawGet("pending/obj").status, 404);
  (*w)->Abort();
  (*w)->Abort();  // idempotent
  EXPECT_EQ(store->Stat(Context(), "pending/obj").status().code(), Code::kNotFound);
  EXPECT_FALSE((*w)->Commit(Context(), {2 * data.size(), crypto::Sha256Hex(data + data)}).ok());
}

// The writer records the SHA-256 the caller computed (the backup pipeline hashes every byte it
// appends) and checks the size itself; a wrong size publishes nothing.
TEST_F(GcsStoreTest, CommitRecordsTheCallersChecksumAndRefusesAWrongSize) {
  auto store = Open(server_->url());
  auto bad = store->NewWriter(Context(), "bad/size");
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE((*bad)->Append(Context(), "hello").ok());
  auto r = (*bad)->Commit(Context(), {6, crypto::Sha256Hex("hello!")});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store->Stat(Context(), "bad/size").status().code(), Code::kNotFound);

  auto good = store->NewWriter(Context(), "good/sum");
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE((*good)->Append(Context(), "hello").ok());
  auto committed = (*good)->Commit(Context(), {5, crypto::Sha256Hex("hello")});
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->sha256, crypto::Sha256Hex("hello"));
  auto stat = store->Stat(Context(), "good/sum");
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->sha256, crypto::Sha256Hex("hello"));
}

TEST_F(GcsStoreTest, ReadResumesAfterADroppedDownload) {
  auto direct = Open(server_->url());
  const std::string data = RandomData(3 << 20, 5);
  ASSERT_TRUE(Upload(*direct, "read/resume", data).ok());
  FaultProxy proxy(server_->port());
  auto store = Open(proxy.url());
  proxy.CutDownstreamAfter(1 << 20);
  std::string got = ReadAll(*store, "read/resume");
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_TRUE(got == data) << "got " << got.size() << " bytes";
  EXPECT_NE(proxy.ClientBytes().find("Range: bytes="), std::string::npos);
}

TEST_F(GcsStoreTest, PersistentFailureLeavesNoObject) {
  FaultProxy proxy(server_->port());
  auto store = Open(proxy.url());
  auto w = store->NewWriter(Context(), "fail/persistent");
  ASSERT_TRUE(w.ok());
  const std::string data = RandomData(kChunk, 6);
  ASSERT_TRUE((*w)->Append(Context(), data).ok());
  ASSERT_TRUE((*w)->Append(Context(), data).ok());  // the first chunk went out
  proxy.SetDown(true);
  Status st = (*w)->Append(Context(), data);  // the second chunk cannot
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_FALSE((*w)->Commit(Context(), {3 * data.size(), ""}).ok());
  w->reset();
  auto direct = Open(server_->url());
  EXPECT_EQ(direct->Stat(Context(), "fail/persistent").status().code(), Code::kNotFound);
  EXPECT_EQ(RawGet("fail/persistent").status, 404);
}

// A chunk cut off in the middle. The writer asks the session for its persisted offset
// ("Content-Range: bytes */*") before resending. Real GCS answers 308 with the offset;
// fake-gcs-server 1.56.1 instead finalizes the session with the bytes it has (its issue #2354),
// so here the writer must notice, delete the partial object and fail: nothing may stay
// visible. The resume from a persisted offset itself is covered in gcs_resume_test.cc.
TEST_F(GcsStoreTest, ChunkCutMidwayOnFakeGcsLeavesNoPartialObject) {
  FaultProxy proxy(server_->port());
  auto store = Open(proxy.url());
  auto w = store->NewWriter(Context(), "fail/midway");
  ASSERT_TRUE(w.ok());
  const std::string data = RandomData(3 * kChunk, 7);
  proxy.CutUpstreamAfter(kChunk + kChunk / 2);
  Status st = (*w)->Append(Context(), data);
  if (st.ok()) st = (*w)->Commit(Context(), {data.size(), crypto::Sha256Hex(data)}).status();
  EXPECT_EQ(proxy.cuts(), 1);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("finalized"), std::string::npos) << st.message();
  EXPECT_NE(proxy.ClientBytes().find("Content-Range: bytes */*"), std::string::npos);
  w->reset();
  EXPECT_EQ(RawGet("fail/midway").status, 404);
}

}  // namespace
}  // namespace bao::storage
