// The GCS writer against a small in-process stand-in for the JSON API (cpp-httplib) that can
// lose the answer to the final chunk of a resumable upload: the commit's outcome is then
// unknown, and the object under the key decides (gcs_store.h). Like fake-gcs-server, the
// stand-in forgets a session once it has finalized it (a later status query gets 404).
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "crypto/crypto.h"
#include "storage/gcs_store.h"
#include "storage/target.h"

namespace bao::storage {
namespace {

using nlohmann::json;

class FakeGcs {
 public:
  FakeGcs() {
    server_.Get(R"(/storage/v1/b/backups)", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"name":"backups"})", "application/json");
    });
    server_.Get(R"(/storage/v1/b/backups/o/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  std::lock_guard<std::mutex> lock(mu_);
                  auto it = objects_.find(req.matches[1]);
                  if (it == objects_.end()) return NotFound(res);
                  if (req.get_param_value("alt") == "media") {
                    res.set_content(it->second.body, "application/octet-stream");
                  } else {
                    res.set_content(Resource(it->first).dump(), "application/json");
                  }
                });
    server_.Post(R"(/upload/storage/v1/b/backups/o)",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   std::lock_guard<std::mutex> lock(mu_);
                   const std::string name = req.get_param_value("name");
                   if (req.get_param_value("uploadType") == "resumable") {
                     const int id = ++next_session_;
                     sessions_[id] = Session{name, ""};
                     res.set_header("Location", "http://127.0.0.1:" + std::to_string(port_) +
                                                    "/upload/session/" + std::to_string(id));
                     return;
                   }
                   if (req.get_param_value("ifGenerationMatch") == "0" && objects_.count(name)) {
                     res.status = 412;
                     return;
                   }
                   Store(name, req.body);
                   res.set_content(Resource(name).dump(), "application/json");
                 });
    server_.Put(
        R"(/upload/session/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
          std::lock_guard<std::mutex> lock(mu_);
          // "bytes S-E/T" or "bytes */T"; T is "*" until the final chunk.
          const std::string range = req.get_header_value("Content-Range");
          const std::string total = range.substr(range.find('/') + 1);
          const bool declares_total = total != "*";
          auto s = sessions_.find(std::stoi(req.matches[1]));
          if (s == sessions_.end()) {
            return Answer(res, declares_total, 404, R"({"error":{"code":404}})");
          }
          if (declares_total && !finalize_) {
            return Answer(res, true, 200, "{}");  // lost before the session saw it
          }
          if (range.compare(0, 8, "bytes */") != 0) {
            const uint64_t start = std::stoull(range.substr(6));
            s->second.bytes.resize(std::min<uint64_t>(start, s->second.bytes.size()));
            s->second.bytes += req.body;
          }
          if (declares_total && s->second.bytes.size() == std::stoull(total)) {
            const std::string name = s->second.name;
            Store(name, s->second.bytes);
            sessions_.erase(s);  // finalized: forgotten, as fake-gcs-server does
            return Answer(res, true, 200, Resource(name).dump());
          }
          res.status = 308;
          if (!s->second.bytes.empty()) {
            res.set_header("Range", "bytes=0-" + std::to_string(s->second.bytes.size() - 1));
          }
        });
    server_.Delete(R"(/upload/session/(\d+))",
                   [this](const httplib::Request& req, httplib::Response& res) {
                     std::lock_guard<std::mutex> lock(mu_);
                     ++cancels_;
                     sessions_.erase(std::stoi(req.matches[1]));
                     res.status = 499;
                   });
    server_.Delete(R"(/storage/v1/b/backups/o/(.+))",
                   [this](const httplib::Request& req, httplib::Response& res) {
                     std::lock_guard<std::mutex> lock(mu_);
                     if (objects_.erase(req.matches[1]) == 0) return NotFound(res);
                     res.status = 204;
                   });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeGcs() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The next `n` answers to requests declaring the total (final chunk, status query after it)
  // lose their body (-1: all of them).
  void LoseFinalAnswers(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    lose_ = n;
  }
  // Whether the final chunk finalizes the object (else it is lost before the session saw it).
  void Finalize(bool yes) {
    std::lock_guard<std::mutex> lock(mu_);
    finalize_ = yes;
  }
  void PutObject(const std::string& name, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    Store(name, body);
  }
  std::optional<std::string> Body(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) return std::nullopt;
    return it->second.body;
  }
  size_t objects() const {
    std::lock_guard<std::mutex> lock(mu_);
    return objects_.size();
  }
  int cancels() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cancels_;
  }

 private:
  struct Object {
    std::string body;
    int64_t generation = 0;
  };
  struct Session {
    std::string name, bytes;
  };

  void Store(const std::string& name, const std::string& body) {
    objects_[name] = Object{body, ++next_generation_};
  }
  json Resource(const std::string& name) const {
    const Object& o = objects_.at(name);
    return json{{"name", name},
                {"size", std::to_string(o.body.size())},
                {"generation", std::to_string(o.generation)},
                {"crc32c", crypto::Crc32cBase64(crypto::Crc32c(0, o.body))},
                {"md5Hash", crypto::Md5Base64(o.body)}};
  }
  static void NotFound(httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":{"code":404,"message":"No such object"}})", "application/json");
  }
  // Answers `body` with `status`; only the head when `declares_total` and an answer is to be
  // lost: the connection closes where the body should start.
  void Answer(httplib::Response& res, bool declares_total, int status, const std::string& body) {
    res.status = status;
    if (!declares_total || lose_ == 0) {
      res.set_content(body, "application/json");
      return;
    }
    if (lose_ > 0) --lose_;
    res.set_content_provider(body.size() + 100, "application/json",
                             [](size_t, size_t, httplib::DataSink&) { return false; });
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, Object> objects_;
  std::map<int, Session> sessions_;
  int next_session_ = 0;
  int64_t next_generation_ = 1000;
  int lose_ = 0;
  bool finalize_ = true;
  int cancels_ = 0;
};

class GcsUnknownOutcomeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    TargetConfig t;
    t.provider = "gcs";
    t.bucket = "backups";
    t.endpoint = gcs_.url();
    t.part_size = gcs_internal::kChunkGranularity;  // chunks of 256 KiB
    GcsOptions o;
    o.retry.max_attempts = 3;
    o.retry.initial_backoff = std::chrono::milliseconds(1);
    o.retry.max_backoff = std::chrono::milliseconds(5);
    Result<std::unique_ptr<Store>> s = OpenGcsStore(t, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    data_.assign(gcs_internal::kChunkGranularity + 5000, 'g');  // two chunks
    for (size_t i = 0; i < data_.size(); i += 5) data_[i] = static_cast<char>(i * 17);
  }

  Result<std::unique_ptr<ObjectWriter>> Written(const std::string& key) {
    BAO_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> w, store_->NewWriter(Context(), key));
    BAO_RETURN_IF_ERROR(w->Append(Context(), data_));
    return w;
  }
  Result<ObjectInfo> Commit(ObjectWriter* w) {
    return w->Commit(Context(), CommitInfo{data_.size(), crypto::Sha256Hex(data_)});
  }

  FakeGcs gcs_;
  std::unique_ptr<Store> store_;
  std::string data_;
};

TEST_F(GcsUnknownOutcomeTest, EveryAnswerLostButFinalizedFindsTheObject) {
  gcs_.LoseFinalAnswers(-1);
  auto w = Written("lost.snap");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Result<ObjectInfo> r = Commit(w->get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size, data_.size());
  EXPECT_EQ(r->sha256, crypto::Sha256Hex(data_));
  EXPECT_EQ(gcs_.Body("lost.snap"), data_);
  // The object, its checksum; the session marker is gone.
  EXPECT_EQ(gcs_.objects(), 2u);
  EXPECT_TRUE(gcs_.Body("lost.snap.sha256").has_value());
}

TEST_F(GcsUnknownOutcomeTest, OneAnswerLostThenAForgottenSessionFindsTheObject) {
  gcs_.LoseFinalAnswers(1);  // then the status query gets 404, as from fake-gcs-server
  auto w = Written("once.snap");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Result<ObjectInfo> r = Commit(w->get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(gcs_.Body("once.snap"), data_);
}

TEST_F(GcsUnknownOutcomeTest, AnotherObjectUnderTheKeyIsAConflictAndIsLeftAlone) {
  gcs_.Finalize(false);
  gcs_.LoseFinalAnswers(-1);
  auto w = Written("taken.snap");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  gcs_.PutObject("taken.snap", "someone else's backup");
  Result<ObjectInfo> r = Commit(w->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kAlreadyExists) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kConflict);
  EXPECT_EQ(r.status().stage(), Stage::kStorage);
  EXPECT_EQ(gcs_.Body("taken.snap"), "someone else's backup");
  EXPECT_EQ(gcs_.cancels(), 1) << "the session was not cancelled";
}

TEST_F(GcsUnknownOutcomeTest, NoObjectAfterLostAnswersFailsAndCancelsTheSession) {
  gcs_.Finalize(false);
  gcs_.LoseFinalAnswers(-1);
  auto w = Written("none.snap");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Result<ObjectInfo> r = Commit(w->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kUnreachable);
  EXPECT_EQ(r.status().stage(), Stage::kStorage);
  EXPECT_EQ(gcs_.Body("none.snap"), std::nullopt);
  EXPECT_EQ(gcs_.cancels(), 1);
}

}  // namespace
}  // namespace bao::storage
