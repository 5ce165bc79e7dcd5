// The S3 writer against a small in-process stand-in for S3 (cpp-httplib) that can lose the
// answer to CompleteMultipartUpload: the commit's outcome is then unknown, and the object under
// the key decides (s3_store.h). The stand-in keeps objects and multipart uploads in memory and
// gives objects the ETags S3 gives them (MD5 of the body; for a completed upload, the MD5 of
// the concatenated binary part MD5s and "-N").
#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "storage/s3_store.h"
#include "storage/target.h"

namespace bao::storage {
namespace {

std::string Md5Hex(std::string_view data) {
  Result<std::string> raw = crypto::Base64Decode(crypto::Md5Base64(data));
  return raw.ok() ? crypto::HexEncode(*raw) : "";
}

TEST(S3MultipartETagTest, IsTheMd5OfTheBinaryPartMd5sAndTheCount) {
  // md5("hello"), md5("world"); the results computed with Python's hashlib.
  const std::string hello = "5d41402abc4b2a76b9719d911017c592";
  const std::string world = "7d793037a0760186574b0282f2f435e7";
  EXPECT_EQ(s3_internal::MultipartETag({hello, world}), "065947336a2f2a95ba8899f3675c3be6-2");
  EXPECT_EQ(s3_internal::MultipartETag({"\"" + hello + "\""}),
            "62109206880d38a4010a98e11243924a-1");
  EXPECT_EQ(s3_internal::MultipartETag({"5D41402ABC4B2A76B9719D911017C592"}),
            "62109206880d38a4010a98e11243924a-1");
  // Part ETags that are not MD5s (SSE-C, some servers) cannot predict the object's.
  EXPECT_EQ(s3_internal::MultipartETag({}), std::nullopt);
  EXPECT_EQ(s3_internal::MultipartETag({hello, "\"abc\""}), std::nullopt);
  EXPECT_EQ(s3_internal::MultipartETag({"5d41402abc4b2a76b9719d911017c59z"}), std::nullopt);
  EXPECT_EQ(s3_internal::Unquoted("\"x-2\""), "x-2");
  EXPECT_EQ(s3_internal::Unquoted("x"), "x");
}

// Path-style S3 for bucket "backups", in memory.
class FakeS3 {
 public:
  FakeS3() {
    server_.Get(R"(/backups/?)", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
                      "application/xml");
    });
    server_.Get(R"(/backups/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = objects_.find(req.matches[1]);
      if (it == objects_.end()) return Error(res, 404, "NoSuchKey");
      res.set_header("ETag", "\"" + it->second.etag + "\"");
      res.set_content(it->second.body, "application/octet-stream");
    });
    server_.Put(R"(/backups/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      const std::string key = req.matches[1];
      const std::string etag = Md5Hex(req.body);
      if (req.has_param("uploadId")) {
        auto up = uploads_.find(req.get_param_value("uploadId"));
        if (up == uploads_.end()) return Error(res, 404, "NoSuchUpload");
        up->second.parts[std::stoi(req.get_param_value("partNumber"))] = req.body;
      } else {
        if (req.get_header_value("If-None-Match") == "*" && objects_.count(key) != 0) {
          return Error(res, 412, "PreconditionFailed");
        }
        objects_[key] = Object{req.body, etag};
      }
      res.set_header("ETag", "\"" + etag + "\"");
    });
    server_.Post(R"(/backups/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      const std::string key = req.matches[1];
      if (req.has_param("uploads")) {
        const std::string id = "u-" + std::to_string(++next_upload_);
        uploads_[id] = Upload{key, {}};
        res.set_content("<InitiateMultipartUploadResult><UploadId>" + id +
                            "</UploadId></InitiateMultipartUploadResult>",
                        "application/xml");
        return;
      }
      ++completes_;
      auto up = uploads_.find(req.get_param_value("uploadId"));
      if (up == uploads_.end()) return Cut(res, 404, ErrorXml("NoSuchUpload"));
      if (!complete_) return Cut(res, 200, "");  // lost before S3 acted on it
      std::string body;
      std::vector<std::string> md5s;
      for (const auto& [number, part] : up->second.parts) {
        body += part;
        md5s.push_back(Md5Hex(part));
      }
      const std::string etag = s3_internal::MultipartETag(md5s).value_or("");
      objects_[key] = Object{body, etag};
      uploads_.erase(up);
      Cut(res, 200,
          "<CompleteMultipartUploadResult><ETag>\"" + etag +
              "\"</ETag></CompleteMultipartUploadResult>");
    });
    server_.Delete(R"(/backups/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      if (req.has_param("uploadId")) {
        ++aborts_;
        if (uploads_.erase(req.get_param_value("uploadId")) == 0) {
          return Error(res, 404, "NoSuchUpload");
        }
      } else {
        objects_.erase(req.matches[1]);
      }
      res.status = 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeS3() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The next `n` answers to CompleteMultipartUpload lose their body (-1: all of them).
  void LoseCompleteAnswers(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    lose_ = n;
  }
  // Whether CompleteMultipartUpload completes the upload (else the request is lost before).
  void CompleteUploads(bool yes) {
    std::lock_guard<std::mutex> lock(mu_);
    complete_ = yes;
  }
  void PutObject(const std::string& key, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_[key] = Object{body, Md5Hex(body)};
  }
  std::optional<std::string> Body(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return std::nullopt;
    return it->second.body;
  }
  size_t open_uploads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return uploads_.size();
  }
  int completes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return completes_;
  }
  int aborts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return aborts_;
  }

 private:
  struct Object {
    std::string body, etag;
  };
  struct Upload {
    std::string key;
    std::map<int, std::string> parts;
  };

  static std::string ErrorXml(const std::string& code) {
    return "<Error><Code>" + code + "</Code><Message>fake</Message></Error>";
  }
  static void Error(httplib::Response& res, int status, const std::string& code) {
    res.status = status;
    res.set_content(ErrorXml(code), "application/xml");
  }
  // Answers `body` with `status`, or only its head when an answer is to be lost: the
  // connection closes where the body should start.
  void Cut(httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    if (lose_ == 0) {
      res.set_content(body, "application/xml");
      return;
    }
    if (lose_ > 0) --lose_;
    res.set_content_provider(body.size() + 100, "application/xml",
                             [](size_t, size_t, httplib::DataSink&) { return false; });
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, Object> objects_;
  std::map<std::string, Upload> uploads_;
  int next_upload_ = 0;
  int lose_ = 0;
  bool complete_ = true;
  int completes_ = 0;
  int aborts_ = 0;
};

class S3UnknownOutcomeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TargetConfig t;
    t.provider = "s3";
    t.endpoint = s3_.endpoint();
    t.bucket = "backups";
    t.use_path_style = true;
    t.part_size = kMinPartSize;
    t.concurrency = 2;
    S3Options o;
    o.retry.max_attempts = 3;
    o.retry.initial_backoff = std::chrono::milliseconds(1);
    o.retry.max_backoff = std::chrono::milliseconds(5);
    o.env = [](const std::string& name) -> std::optional<std::string> {
      if (name == "AWS_ACCESS_KEY_ID") return "AKIATESTFAKE";
      if (name == "AWS_SECRET_ACCESS_KEY") return "fake-s3-secret";
      return std::nullopt;
    };
    Result<std::unique_ptr<S3Store>> s = OpenS3StoreWithOptions(t, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    // Two parts: a multipart upload.
    data_.assign(kMinPartSize + 4096, 'x');
    for (size_t i = 0; i < data_.size(); i += 7) data_[i] = static_cast<char>(i * 31);
  }

  Result<ObjectInfo> Upload(const std::string& key) {
    BAO_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> w, store_->NewWriter(Context(), key));
    BAO_RETURN_IF_ERROR(w->Append(Context(), data_));
    return w->Commit(Context(), CommitInfo{data_.size(), crypto::Sha256Hex(data_)});
  }

  FakeS3 s3_;
  std::unique_ptr<S3Store> store_;
  std::string data_;
};

TEST_F(S3UnknownOutcomeTest, EveryAnswerLostButCompletedFindsTheObjectAndChecksIt) {
  s3_.LoseCompleteAnswers(-1);
  Result<ObjectInfo> r = Upload("lost.snap");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size, data_.size());
  EXPECT_EQ(r->sha256, crypto::Sha256Hex(data_));
  EXPECT_EQ(s3_.Body("lost.snap"), data_);
  EXPECT_EQ(s3_.completes(), 3);  // every try; the retries found the upload gone
  EXPECT_EQ(s3_.aborts(), 0);
  EXPECT_EQ(s3_.open_uploads(), 0u);
}

TEST_F(S3UnknownOutcomeTest, OneAnswerLostThenNoSuchUploadFindsTheObject) {
  s3_.LoseCompleteAnswers(1);
  Result<ObjectInfo> r = Upload("once.snap");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(s3_.Body("once.snap"), data_);
  EXPECT_EQ(s3_.completes(), 2);
}

TEST_F(S3UnknownOutcomeTest, AnotherObjectUnderTheKeyIsAConflictAndIsLeftAlone) {
  s3_.CompleteUploads(false);
  s3_.LoseCompleteAnswers(-1);
  Result<std::unique_ptr<ObjectWriter>> w = store_->NewWriter(Context(), "taken.snap");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Append(Context(), data_).ok());
  // Written by someone else while this upload was on its way.
  s3_.PutObject("taken.snap", "someone else's backup");
  Result<ObjectInfo> r =
      (*w)->Commit(Context(), CommitInfo{data_.size(), crypto::Sha256Hex(data_)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kAlreadyExists) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kConflict);
  EXPECT_EQ(r.status().stage(), Stage::kStorage);
  EXPECT_EQ(s3_.Body("taken.snap"), "someone else's backup");
  EXPECT_EQ(s3_.open_uploads(), 0u) << "the multipart upload was not aborted";
}

TEST_F(S3UnknownOutcomeTest, NoObjectAfterLostAnswersFailsAndAbortsTheUpload) {
  s3_.CompleteUploads(false);
  s3_.LoseCompleteAnswers(-1);
  Result<ObjectInfo> r = Upload("none.snap");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kUnreachable);
  EXPECT_EQ(r.status().stage(), Stage::kStorage);
  EXPECT_EQ(s3_.Body("none.snap"), std::nullopt);
  EXPECT_EQ(s3_.completes(), 3);
  EXPECT_EQ(s3_.aborts(), 1);
  EXPECT_EQ(s3_.open_uploads(), 0u);
}

}  // namespace
}  // namespace bao::storage
