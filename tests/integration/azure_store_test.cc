// The Azure Blob store against Azurite (a real implementation of the Blob service that checks
// SharedKey and SAS signatures), cross-checked with @azure/storage-blob through
// azure_check.js.
#include "storage/azure_store.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "crypto/crypto.h"
#include "storage/azure_auth.h"
#include "storage/target.h"
#include "support/azurite.h"
#include "support/testing.h"

namespace bao {
namespace {

using nlohmann::json;
using storage::CommitInfo;
using storage::ObjectInfo;
using storage::Store;
using testing::Azurite;

constexpr uint64_t kPart = storage::kMinPartSize;  // 5 MiB

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

class AzureStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    azurite_ = new Azurite();
    std::string error;
    if (!azurite_->Start(&error)) {
      start_error_ = error;
      return;
    }
    testing::RunResult r = azurite_->Check({"create", "backups"});
    if (r.exit_code != 0) start_error_ = "cannot create the container: " + r.err;
  }
  static void TearDownTestSuite() {
    delete azurite_;
    azurite_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(start_error_.empty()) << start_error_; }

  storage::TargetConfig Target(const std::string& key_file_contents) {
    storage::TargetConfig t;
    t.provider = "azure";
    t.bucket = "backups";
    t.azure_storage_account = testing::kAzuriteAccount;
    t.endpoint = azurite_->endpoint();
    t.part_size = kPart;
    t.concurrency = 3;
    testing::WriteText(creds_.File("accountKey"), key_file_contents);
    t.credentials_dir = creds_.path();
    return t;
  }

  std::unique_ptr<Store> Open(const storage::TargetConfig& t, storage::AzureOptions o = {}) {
    o.retry.initial_backoff = std::chrono::milliseconds(20);
    auto store = storage::OpenAzureStore(t, o);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Writes `data` through the store in uneven chunks and commits.
  Result<ObjectInfo> Put(Store* store, const std::string& key, const std::string& data) {
    BAO_ASSIGN_OR_RETURN(auto writer, store->NewWriter(Context(), key));
    size_t pos = 0, step = 777777;
    while (pos < data.size()) {
      size_t n = std::min(step, data.size() - pos);
      BAO_RETURN_IF_ERROR(writer->Append(Context(), std::string_view(data).substr(pos, n)));
      pos += n;
    }
    return writer->Commit(Context(), {data.size(), crypto::Sha256Hex(data)});
  }

  json CheckJson(const std::vector<std::string>& args) {
    testing::RunResult r = azurite_->Check(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(testing::LastLine(r.out), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  static Azurite* azurite_;
  static std::string start_error_;
  testing::TempDir creds_;
  testing::TempDir work_;
};

Azurite* AzureStoreTest::azurite_ = nullptr;
std::string AzureStoreTest::start_error_;

TEST_F(AzureStoreTest, MultiBlockUploadReadsBackByteForByteWithTheSdk) {
  auto store = Open(Target(testing::kAzuriteKey));
  ASSERT_NE(store, nullptr);
  std::string data = Pattern(2 * kPart + 123457, 1);  // three blocks
  auto info = Put(store.get(), "ns/c1/2025-01-15T03-00-00Z-0a1b2c3d.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, crypto::Sha256Hex(data));

  std::string out = work_.File("down");
  json j = CheckJson({"download", "backups", "ns/c1/2025-01-15T03-00-00Z-0a1b2c3d.snap", out});
  EXPECT_EQ(j["size"], data.size());
  EXPECT_EQ(j["metadata"]["sha256"], crypto::Sha256Hex(data));
  EXPECT_TRUE(testing::ReadText(out) == data);
  json blocks = CheckJson({"blocks", "backups", "ns/c1/2025-01-15T03-00-00Z-0a1b2c3d.snap"});
  EXPECT_EQ(blocks["committed"], 3);
  EXPECT_EQ(blocks["uncommitted"], 0);
}

TEST_F(AzureStoreTest, SmallAndEmptyObjectsGoUpInOnePutBlob) {
  auto store = Open(Target(testing::kAzuriteKey));
  ASSERT_NE(store, nullptr);
  for (const std::string& data : {Pattern(1000, 2), std::string()}) {
    std::string key = "single/" + std::to_string(data.size()) + ".snap";
    auto info = Put(store.get(), key, data);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    json j = CheckJson({"props", "backups", key});
    EXPECT_EQ(j["exists"], true);
    EXPECT_EQ(j["size"], data.size());
    EXPECT_EQ(j["blobType"], "BlockBlob");
    EXPECT_EQ(j["metadata"]["sha256"], crypto::Sha256Hex(data));
    json blocks = CheckJson({"blocks", "backups", key});
    EXPECT_EQ(blocks["committed"], 0) << "a Put Blob has no block list";
    std::string out = work_.File("single");
    CheckJson({"download", "backups", key, out});
    EXPECT_TRUE(testing::ReadText(out) == data);
  }
}

TEST_F(AzureStoreTest, BlobsWrittenByTheSdkAreListedStatedAndRead) {
  std::string data = Pattern(9 * 1024 * 1024 + 5, 3);  // several SDK blocks
  std::string file = work_.File("src");
  testing::WriteText(file, data);
  CheckJson({"upload", "backups", "sdk/x/one.snap", file, crypto::Sha256Hex(data)});
  testing::WriteText(file, "tiny");
  CheckJson({"upload", "backups", "sdk/x/two.snap", file});

  auto store = Open(Target(testing::kAzuriteKey));
  ASSERT_NE(store, nullptr);
  std::vector<ObjectInfo> seen;
  ASSERT_TRUE(store
                  ->List(Context(), "sdk/x/",
                         [&](const ObjectInfo& i) {
                           seen.push_back(i);
                           return Status::Ok();
                         })
                  .ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].key, "sdk/x/one.snap");
  EXPECT_EQ(seen[0].size, data.size());
  EXPECT_EQ(seen[0].sha256, crypto::Sha256Hex(data));
  EXPECT_GT(seen[0].modified.time_since_epoch().count(), 0);
  EXPECT_EQ(seen[1].key, "sdk/x/two.snap");
  EXPECT_EQ(seen[1].sha256, "");

  auto st = store->Stat(Context(), "sdk/x/one.snap");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->size, data.size());
  EXPECT_EQ(st->sha256, crypto::Sha256Hex(data));

  std::string got;
  ASSERT_TRUE(store
                  ->Read(Context(), "sdk/x/one.snap", 0,
                         [&](std::string_view c) {
                           got.append(c);
                           return Status::Ok();
                         })
                  .ok());
  EXPECT_TRUE(got == data);
  got.clear();
  ASSERT_TRUE(store
                  ->Read(Context(), "sdk/x/one.snap", 4000000,
                         [&](std::string_view c) {
                           got.append(c);
                           return Status::Ok();
                         })
                  .ok());
  EXPECT_TRUE(got == data.substr(4000000));

  auto missing = store->Stat(Context(), "sdk/x/none.snap");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  Status read_missing =
      store->Read(Context(), "sdk/x/none.snap", 0, [](std::string_view) { return Status::Ok(); });
  EXPECT_EQ(read_missing.code(), Code::kNotFound);
}

TEST_F(AzureStoreTest, ListingFollowsMarkersPastOnePage) {
  CheckJson({"many", "backups", "page/k", "23"});
  storage::AzureOptions o;
  o.list_page_size = 5;
  auto store = Open(Target(testing::kAzuriteKey), o);
  ASSERT_NE(store, nullptr);
  std::vector<std::string> keys;
  ASSERT_TRUE(store
                  ->List(Context(), "page/",
                         [&](const ObjectInfo& i) {
                           keys.push_back(i.key);
                           return Status::Ok();
                         })
                  .ok());
  ASSERT_EQ(keys.size(), 23u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(keys.front(), "page/k00000");
  EXPECT_EQ(keys.back(), "page/k00022");
  int calls = 0;
  Status stop = store->List(Context(), "page/", [&](const ObjectInfo&) {
    return ++calls == 7 ? Aborted("enough") : Status::Ok();
  });
  EXPECT_EQ(stop.code(), Code::kAborted);
  EXPECT_EQ(calls, 7);
}

TEST_F(AzureStoreTest, DeleteRemovesAndIsIdempotent) {
  auto store = Open(Target(testing::kAzuriteKey));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Put(store.get(), "del/a.snap", "abc").ok());
  ASSERT_TRUE(store->Delete(Context(), "del/a.snap").ok());
  EXPECT_EQ(CheckJson({"props", "backups", "del/a.snap"})["exists"], false);
  EXPECT_TRUE(store->Delete(Context(), "del/a.snap").ok());
}

TEST_F(AzureStoreTest, WrongAccountKeyIsUnauthenticatedAndLeavesNoBlob) {
  std::string wrong = crypto::Base64Encode(std::string(64, 'k'));
  auto store = Open(Target(wrong));
  ASSERT_NE(store, nullptr);
  auto writer = store->NewWriter(Context(), "auth/x.snap");
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), Code::kUnauthenticated) << writer.status().ToString();
  EXPECT_EQ(writer.status().reason(), Reason::kUnauthenticated);
  EXPECT_EQ(writer.status().stage(), Stage::kStorage);
  EXPECT_EQ(writer.status().http_status(), 403);
  EXPECT_NE(writer.status().message().find("devstoreaccount1"), std::string::npos);
  EXPECT_NE(writer.status().message().find("account key from " + creds_.File("accountKey")),
            std::string::npos)
      << writer.status().message();
  EXPECT_EQ(writer.status().message().find(wrong), std::string::npos);
  EXPECT_EQ(CheckJson({"props", "backups", "auth/x.snap"})["exists"], false);
}

TEST_F(AzureStoreTest, MissingContainerIsNotFoundNamingContainerAndAccount) {
  auto t = Target(testing::kAzuriteKey);
  t.bucket = "no-such-container";
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  auto writer = store->NewWriter(Context(), "x.snap");
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), Code::kNotFound);
  EXPECT_EQ(writer.status().reason(), Reason::kNotFound);
  EXPECT_EQ(writer.status().http_status(), 404);
  EXPECT_NE(writer.status().message().find("\"no-such-container\""), std::string::npos);
  EXPECT_NE(writer.status().message().find("devstoreaccount1"), std::string::npos);
}

TEST_F(AzureStoreTest, UnreachableEndpointIsNamed) {
  auto t = Target(testing::kAzuriteKey);
  t.endpoint = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/devstoreaccount1";
  storage::AzureOptions o;
  o.retry.max_attempts = 2;
  auto store = Open(t, o);
  ASSERT_NE(store, nullptr);
  auto st = store->Stat(Context(), "x.snap");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Code::kUnavailable);
  EXPECT_NE(st.status().message().find(t.endpoint), std::string::npos) << st.status().message();
}

TEST_F(AzureStoreTest, AbandonedUploadBetweenBlocksLeavesNoBlob) {
  auto store = Open(Target(testing::kAzuriteKey));
  ASSERT_NE(store, nullptr);
  {
    auto writer = store->NewWriter(Context(), "abandoned/x.snap");
    ASSERT_TRUE(writer.ok());
    std::string data = Pattern(2 * kPart + 10, 4);
    ASSERT_TRUE((*writer)->Append(Context(), data).ok());
    // The snapshot stream fails here: the writer is dropped without Commit().
  }
  EXPECT_EQ(CheckJson({"props", "backups", "abandoned/x.snap"})["exists"], false);
  auto st = store->Stat(Context(), "abandoned/x.snap");
  EXPECT_EQ(st.status().code(), Code::kNotFound);
}

// A proxy in front of Azurite (SharedKey signatures do not cover the host, so requests pass
// through unchanged). `fault` may answer a request itself instead of forwarding it.
class FaultProxy {
 public:
  using Fault = std::function<bool(const httplib::Request&, httplib::Response&)>;
  FaultProxy(int upstream, Fault fault) : upstream_(upstream), fault_(std::move(fault)) {
    auto forward = [this](const httplib::Request& req, httplib::Response& res) {
      if (fault_(req, res)) return;
      auto r = Forward(req);
      if (!r) {
        res.status = 502;
        return;
      }
      Copy(*r, req.method == "HEAD", res);
    };
    server_.Get(".*", forward);
    server_.Put(".*", forward);
    server_.Delete(".*", forward);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FaultProxy() {
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/devstoreaccount1";
  }

  httplib::Result Forward(const httplib::Request& req) {
    httplib::Client up("127.0.0.1", upstream_);
    httplib::Request out;
    for (const auto& [k, v] : req.headers) {
      std::string lower = k;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "host" || lower == "remote_addr" || lower == "remote_port" ||
          lower == "local_addr" || lower == "local_port") {
        continue;
      }
      out.headers.emplace(k, v);
    }
    out.method = req.method;
    out.path = req.target;
    out.body = req.body;
    return up.send(out);
  }

  static void Copy(const httplib::Response& r, bool head, httplib::Response& res) {
    res.status = r.status;
    for (const auto& [k, v] : r.headers) {
      if (k != "Content-Length" && k != "Transfer-Encoding") res.set_header(k, v);
    }
    if (head) {  // the server derives Content-Length from the content it would send
      std::string len = r.get_header_value("Content-Length");
      res.set_content(std::string(len.empty() ? 0 : std::stoull(len), '\0'),
                      r.get_header_value("Content-Type"));
    } else {
      res.set_content(r.body, r.get_header_value("Content-Type"));
    }
  }

 private:
  int upstream_;
  Fault fault_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// Every Put Block after the first answers 503, so the upload fails between blocks after its
// retries.
TEST_F(AzureStoreTest, StorageFailureBetweenBlocksLeavesNoBlob) {
  std::atomic<int> blocks{0}, refused{0};
  FaultProxy proxy(azurite_->port(), [&](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "PUT" && req.get_param_value("comp") == "block" && ++blocks > 1) {
      ++refused;
      res.status = 503;
      res.set_header("x-ms-error-code", "ServerBusy");
      res.set_content("<?xml version=\"1.0\"?><Error><Code>ServerBusy</Code></Error>",
                      "application/xml");
      return true;
    }
    return false;
  });
  auto t = Target(testing::kAzuriteKey);
  t.endpoint = proxy.endpoint();
  t.concurrency = 1;
  storage::AzureOptions o;
  o.retry.max_attempts = 3;
  auto store = Open(t, o);
  ASSERT_NE(store, nullptr);
  auto writer = store->NewWriter(Context(), "failing/x.snap");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::string data = Pattern(3 * kPart + 10, 5);
  Status s = (*writer)->Append(Context(), data);
  Result<ObjectInfo> committed =
      s.ok() ? (*writer)->Commit(Context(), {data.size(), crypto::Sha256Hex(data)})
             : Result<ObjectInfo>(s);
  writer->reset();
  ASSERT_FALSE(committed.ok());
  EXPECT_EQ(committed.status().code(), Code::kUnavailable) << committed.status().ToString();
  EXPECT_EQ(committed.status().reason(), Reason::kThrottled);  // ServerBusy
  EXPECT_EQ(committed.status().http_status(), 503);
  EXPECT_NE(committed.status().message().find("3 attempts"), std::string::npos)
      << committed.status().message();
  EXPECT_EQ(refused.load(), 3);
  EXPECT_EQ(CheckJson({"props", "backups", "failing/x.snap"})["exists"], false);
  // The first block reached Azurite; the abort discarded it rather than leaving it for the
  // service's one-week collection.
  EXPECT_EQ(blocks.load(), 4);
  EXPECT_EQ(CheckJson({"listall", "backups", "failing/"}), json::array());
}

// The first download is cut after half the bytes; Read resumes with a range request and the
// sink sees every byte exactly once.
TEST_F(AzureStoreTest, ReadResumesAfterADroppedConnection) {
  auto direct = Open(Target(testing::kAzuriteKey));
  ASSERT_NE(direct, nullptr);
  std::string data = Pattern(3 * 1024 * 1024 + 17, 7);
  ASSERT_TRUE(Put(direct.get(), "resume/x.snap", data).ok());

  std::atomic<int> downloads{0};
  std::string ranges;
  std::mutex mu;
  FaultProxy* self = nullptr;
  FaultProxy proxy(azurite_->port(), [&](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" || req.has_param("comp") || req.has_param("restype")) return false;
    {
      std::lock_guard<std::mutex> lock(mu);
      ranges += "[" + req.get_header_value("x-ms-range") + "|" +
                (req.get_header_value("If-Match").empty() ? "" : "etag") + "]";
    }
    if (++downloads > 1) return false;
    auto r = self->Forward(req);
    if (!r) return false;
    auto body = std::make_shared<std::string>(r->body);
    res.status = r->status;
    res.set_content_provider(body->size(), "application/octet-stream",
                             [body](size_t, size_t, httplib::DataSink& sink) {
                               sink.write(body->data(), body->size() / 2);
                               return false;  // drop the connection mid-body
                             });
    return true;
  });
  self = &proxy;
  auto t = Target(testing::kAzuriteKey);
  t.endpoint = proxy.endpoint();
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  std::string got;
  Status s = store->Read(Context(), "resume/x.snap", 5, [&](std::string_view c) {
    got.append(c);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(downloads.load(), 2);
  EXPECT_TRUE(got == data.substr(5)) << got.size() << " bytes instead of " << data.size() - 5;
  std::lock_guard<std::mutex> lock(mu);
  size_t resumed = 5 + (data.size() - 5) / 2;
  EXPECT_EQ(ranges, "[bytes=5-|etag][bytes=" + std::to_string(resumed) + "-|etag]");
}

TEST_F(AzureStoreTest, SasFromTheSdkWorksThroughAConnectionString) {
  json sas = CheckJson({"sas", "backups"});
  ASSERT_TRUE(sas["sas"].is_string());
  std::string token = sas["sas"].get<std::string>();
  auto t = Target("");
  std::remove(creds_.File("accountKey").c_str());
  t.endpoint.clear();
  testing::WriteText(creds_.File("connectionString"),
                     "BlobEndpoint=" + azurite_->endpoint() + ";SharedAccessSignature=" + token);
  auto store = Open(t);
  ASSERT_NE(store, nullptr);
  std::string data = Pattern(kPart + 99, 6);
  auto info = Put(store.get(), "sas/x.snap", data);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->sha256, crypto::Sha256Hex(data));
  json j = CheckJson({"props", "backups", "sas/x.snap"});
  EXPECT_EQ(j["size"], data.size());
  EXPECT_EQ(j["metadata"]["sha256"], crypto::Sha256Hex(data));
  std::string got;
  ASSERT_TRUE(store
                  ->Read(Context(), "sas/x.snap", 0,
                         [&](std::string_view c) {
                           got.append(c);
                           return Status::Ok();
                         })
                  .ok());
  EXPECT_TRUE(got == data);
  int listed = 0;
  ASSERT_TRUE(
      store->List(Context(), "sas/", [&](const ObjectInfo&) { return ++listed, Status::Ok(); })
          .ok());
  EXPECT_EQ(listed, 1);
  ASSERT_TRUE(store->Delete(Context(), "sas/x.snap").ok());

  // A tampered SAS is refused, and the signature never shows in the message.
  size_t sig = token.find("sig=");
  ASSERT_NE(sig, std::string::npos);
  std::string bad = token;
  bad[sig + 4] = bad[sig + 4] == 'A' ? 'B' : 'A';
  testing::WriteText(creds_.File("connectionString"),
                     "BlobEndpoint=" + azurite_->endpoint() + ";SharedAccessSignature=" + bad);
  auto bad_store = Open(t);
  ASSERT_NE(bad_store, nullptr);
  auto st = bad_store->Stat(Context(), "sas/none.snap");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().message().find("sig="), std::string::npos) << st.status().message();
}

TEST_F(AzureStoreTest, SharedKeySignatureMatchesTheSdk) {
  testing::RunResult r = azurite_->Check({"sign", testing::kAzuriteAccount, testing::kAzuriteKey});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json cap = json::parse(testing::LastLine(r.out), nullptr, false);
  ASSERT_TRUE(cap.is_object()) << r.out;
  storage::azure::Headers headers;
  std::string sdk_auth;
  for (auto& [name, value] : cap["headers"].items()) {
    if (name == "authorization") {
      sdk_auth = value.get<std::string>();
    } else {
      headers.emplace_back(name, value.get<std::string>());
    }
  }
  ASSERT_FALSE(sdk_auth.empty());
  std::string url = "http://127.0.0.1:1" + cap["url"].get<std::string>();
  EXPECT_NE(url.find("a%20b%2Bc.snap"), std::string::npos) << url;
  std::string key = *crypto::Base64Decode(testing::kAzuriteKey);
  EXPECT_EQ(storage::azure::SharedKeyAuthorization(testing::kAzuriteAccount, key,
                                                   cap["method"].get<std::string>(), url, headers),
            sdk_auth);
}

TEST_F(AzureStoreTest, OpenStoreDispatchesToAzure) {
  auto store = storage::OpenStore(Target(testing::kAzuriteKey));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->Describe(), "azure://devstoreaccount1/backups");
}

}  // namespace
}  // namespace bao
