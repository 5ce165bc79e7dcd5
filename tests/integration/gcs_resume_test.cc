// The writer's resume-from-persisted-offset logic against a stand-in session that follows
// Google's documented resumable-upload protocol strictly (fake-gcs-server 1.56.1 cannot be used
// for this: a status query finalizes its sessions, see gcs_store_test.cc). This proves the
// client and the documented protocol agree - the same writer is proven against the real
// fake-gcs-server in gcs_store_test.cc.
//
// The stand-in: a chunk must start exactly at the persisted offset (else 400); a status query
// ("bytes */*" or "bytes */N") answers 308 with "Range: bytes=0-<last>" (no Range when nothing
// is persisted); once armed, it persists only part of one chunk and answers 503.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "crypto/crypto.h"
#include "storage/gcs_store.h"

namespace bao::storage {
namespace {

using nlohmann::json;

class ProtocolSession {
 public:
  ProtocolSession() {
    srv_.Post("/upload/storage/v1/b/bkt/o",
              [this](const httplib::Request& req, httplib::Response& res) {
                if (req.get_param_value("uploadType") != "resumable") {
                  res.set_content("{}", "application/json");  // the writer's session marker
                  return;
                }
                name_ = req.get_param_value("name");
                res.set_header("Location", base() + "/session/1");
                res.set_content("{}", "application/json");
              });
    srv_.Put("/session/1", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(req.get_header_value("Content-Range"));
      Handle(req, res);
    });
    srv_.Patch(R"(/storage/v1/b/bkt/o/(.+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 json body = json::parse(req.body, nullptr, false);
                 std::lock_guard<std::mutex> lock(mu_);
                 metadata_ = body["metadata"];
                 res.set_content(Resource().dump(), "application/json");
               });
    srv_.Delete("/session/1", [this](const httplib::Request&, httplib::Response& res) {
      cancelled_ = true;
      res.status = 499;
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~ProtocolSession() {
    srv_.stop();
    thread_.join();
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The next chunk that starts at or after `offset` persists only `keep` bytes, then 503.
  void FailPartially(uint64_t offset, uint64_t keep) {
    fail_at_ = offset;
    fail_keep_ = keep;
  }
  std::string data() {
    std::lock_guard<std::mutex> lock(mu_);
    return data_;
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  bool finalized() const { return finalized_; }
  bool cancelled() const { return cancelled_; }

 private:
  json Resource() const {
    json r = {{"name", name_},
              {"bucket", "bkt"},
              {"generation", "1"},
              {"size", std::to_string(data_.size())},
              {"crc32c", crypto::Crc32cBase64(crypto::Crc32c(0, data_))},
              {"updated", "2026-01-01T00:00:00Z"}};
    if (!metadata_.is_null()) r["metadata"] = metadata_;
    return r;
  }

  void Incomplete(httplib::Response& res) {
    res.status = 308;
    if (!data_.empty()) res.set_header("Range", "bytes=0-" + std::to_string(data_.size() - 1));
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    if (finalized_) {
      res.set_content(Resource().dump(), "application/json");
      return;
    }
    const std::string cr = req.get_header_value("Content-Range");
    if (cr.rfind("bytes */", 0) == 0) {  // status query, or finalize with no more bytes
      const std::string total = cr.substr(8);
      if (total != "*" && std::stoull(total) == data_.size()) {
        finalized_ = true;
        res.set_content(Resource().dump(), "application/json");
        return;
      }
      Incomplete(res);
      return;
    }
    uint64_t start = 0, end = 0;
    char total[32] = {0};
    if (std::sscanf(cr.c_str(), "bytes %lu-%lu/%31s", &start, &end, total) != 3 ||
        end - start + 1 != req.body.size()) {
      res.status = 400;
      res.set_content("bad Content-Range " + cr, "text/plain");
      return;
    }
    if (start != data_.size()) {
      res.status = 400;
      res.set_content("chunk starts at " + std::to_string(start) + " but " +
                          std::to_string(data_.size()) + " bytes are persisted",
                      "text/plain");
      return;
    }
    if (fail_at_ >= 0 && start >= static_cast<uint64_t>(fail_at_)) {
      data_.append(req.body.substr(0, fail_keep_));
      fail_at_ = -1;
      res.status = 503;
      res.set_content("backend error", "text/plain");
      return;
    }
    data_.append(req.body);
    if (std::string(total) != "*" && std::stoull(total) == data_.size()) {
      finalized_ = true;
      res.set_content(Resource().dump(), "application/json");
      return;
    }
    Incomplete(res);
  }

  httplib::Server srv_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::string name_;
  std::string data_;
  json metadata_;
  std::vector<std::string> log_;
  int64_t fail_at_ = -1;
  uint64_t fail_keep_ = 0;
  std::atomic<bool> finalized_{false};
  std::atomic<bool> cancelled_{false};
};

std::unique_ptr<Store> Open(const std::string& endpoint) {
  TargetConfig t;
  t.provider = "gcs";
  t.endpoint = endpoint;
  t.bucket = "bkt";
  t.part_size = kMinPartSize;
  GcsOptions o;
  o.retry.initial_backoff = std::chrono::milliseconds(5);
  auto s = OpenGcsStore(t, o);
  EXPECT_TRUE(s.ok());
  return std::move(*s);
}

std::string RandomData(size_t n) {
  std::mt19937 rng(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(GcsResumeTest, ResumesFromThePersistedOffsetInsideAChunk) {
  ProtocolSession session;
  auto store = Open(session.base());
  const uint64_t chunk = kMinPartSize;
  const std::string data = RandomData(2 * chunk + 4096);
  // The second chunk keeps 3 x 256 KiB + 5 bytes, then fails.
  const uint64_t keep = 3 * 262144 + 5;
  session.FailPartially(chunk, keep);
  auto w = store->NewWriter(Context(), "obj");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Context(), data).ok());
  auto info = (*w)->Commit(Context(), {data.size(), crypto::Sha256Hex(data)});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(session.data() == data);
  EXPECT_TRUE(session.finalized());
  EXPECT_EQ(info->sha256, crypto::Sha256Hex(data));

  const std::string resumed_from = std::to_string(chunk + keep);
  std::vector<std::string> expected = {
      "bytes 0-5242879/*",
      "bytes 5242880-10485759/*",  // persisted partly, 503
      "bytes */*",                 // status query: 308 Range bytes=0-<chunk + keep - 1>
      "bytes " + resumed_from + "-10485759/*",
      "bytes 10485760-10489855/10489856",
  };
  EXPECT_EQ(session.log(), expected);
}

TEST(GcsResumeTest, LostAnswerToTheLastChunkIsRecoveredByTheQuery) {
  ProtocolSession session;
  auto store = Open(session.base());
  const std::string data = RandomData(300000);
  // The final chunk keeps everything but answers 503: the query then finalizes it.
  session.FailPartially(0, data.size());
  auto w = store->NewWriter(Context(), "obj");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Context(), data).ok());
  auto info = (*w)->Commit(Context(), {data.size(), crypto::Sha256Hex(data)});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(session.data() == data);
  std::vector<std::string> expected = {"bytes 0-299999/300000", "bytes */300000"};
  EXPECT_EQ(session.log(), expected);
  EXPECT_FALSE(session.cancelled());
}

TEST(GcsResumeTest, AbortCancelsTheSession) {
  ProtocolSession session;
  auto store = Open(session.base());
  auto w = store->NewWriter(Context(), "obj");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Context(), "abc").ok());
  w->reset();
  EXPECT_TRUE(session.cancelled());
  EXPECT_FALSE(session.finalized());
}

}  // namespace
}  // namespace bao::storage
