// A storage endpoint that accepts connections and then never answers must not hold a run: a
// Context deadline bounds every call, a cancellation ends it quickly, stalls fail a request and
// the tries are bounded, and the cleanup after a cancelled upload is bounded by kCleanupBudget.
// (Before contexts and stall handling were threaded through storage, a hung S3 endpoint kept a
// backup for about 11 minutes: five ~66 s part tries, then five ~60 s abort tries.)
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/s3_store.h"
#include "storage/target.h"

namespace bao::storage {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

milliseconds Since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

// Accepts TCP connections on 127.0.0.1, reads whatever comes, and never answers.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 64);
    thread_ = std::thread([this] { Loop(); });
  }
  ~SilentServer() {
    stop_ = true;
    thread_.join();
    for (int c : conns_) close(c);
    close(fd_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_.load(); }

 private:
  void Loop() {
    std::vector<pollfd> fds;
    char buf[65536];
    while (!stop_) {
      fds.assign(1, pollfd{fd_, POLLIN, 0});
      for (int c : conns_) fds.push_back(pollfd{c, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = accept(fd_, nullptr, nullptr);
        if (c >= 0) {
          conns_.push_back(c);
          ++accepted_;
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents & POLLIN) {
          if (read(fds[i].fd, buf, sizeof buf) <= 0) fds[i].revents = POLLHUP;
        }
      }
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<int> conns_;  // the loop thread's
  std::thread thread_;
};

// An S3 endpoint that starts multipart uploads and then hangs on every part upload and every
// abort, until destroyed.
class HangingS3 {
 public:
  HangingS3() {
    server_.set_keep_alive_max_count(1000);
    server_.Get(".*", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
                      "application/xml");
    });
    server_.Post(".*", [](const httplib::Request& req, httplib::Response& res) {
      if (req.has_param("uploads")) {
        res.set_content(
            "<InitiateMultipartUploadResult><UploadId>u-1</UploadId>"
            "</InitiateMultipartUploadResult>",
            "application/xml");
      }
    });
    server_.Put(".*", [this](const httplib::Request&, httplib::Response&) {
      ++parts_;
      Hang();
    });
    server_.Delete(".*", [this](const httplib::Request& req, httplib::Response&) {
      if (req.has_param("uploadId")) ++aborts_;
      Hang();
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HangingS3() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int parts() const { return parts_.load(); }
  int aborts() const { return aborts_.load(); }

 private:
  void Hang() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return released_; });
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::atomic<int> parts_{0}, aborts_{0};
};

std::unique_ptr<S3Store> OpenAt(const std::string& endpoint, const S3Options& options = {}) {
  TargetConfig t;
  t.provider = "s3";
  t.endpoint = endpoint;
  t.bucket = "backups";
  t.use_path_style = true;
  t.part_size = kMinPartSize;
  t.concurrency = 2;
  S3Options o = options;
  o.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "AWS_ACCESS_KEY_ID") return "AKIATESTHUNG";
    if (name == "AWS_SECRET_ACCESS_KEY") return "hung-endpoint-test-secret";
    return std::nullopt;
  };
  Result<std::unique_ptr<S3Store>> s = OpenS3StoreWithOptions(t, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Waits (polling, with a deadline) until `cond` holds.
bool PollUntil(const std::function<bool()>& cond, milliseconds deadline) {
  auto until = steady_clock::now() + deadline;
  while (!cond()) {
    if (steady_clock::now() >= until) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(HungEndpointTest, AContextDeadlineBoundsEveryCall) {
  SilentServer server;
  auto store = OpenAt(server.endpoint());  // default retries and a 60 s stall time
  ASSERT_NE(store, nullptr);
  auto check = [&](const char* what, const std::function<Status(const Context&)>& call) {
    SCOPED_TRACE(what);
    auto start = steady_clock::now();
    Status s = call(Context().WithTimeout(milliseconds(1500)));
    milliseconds took = Since(start);
    EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.ToString();
    EXPECT_EQ(s.reason(), Reason::kTimeout);
    EXPECT_EQ(s.stage(), Stage::kStorage);
    EXPECT_GE(took.count(), 1400);
    EXPECT_LT(took.count(), 1500 + 2000) << "returned " << took.count() << " ms after start";
  };
  check("NewWriter", [&](const Context& ctx) { return store->NewWriter(ctx, "a.snap").status(); });
  check("Read", [&](const Context& ctx) {
    return store->Read(ctx, "a.snap", 0, [](std::string_view) { return Status::Ok(); });
  });
  check("List", [&](const Context& ctx) {
    return store->List(ctx, "", [](const ObjectInfo&) { return Status::Ok(); });
  });
  check("Delete", [&](const Context& ctx) { return store->Delete(ctx, "a.snap"); });
}

TEST(HungEndpointTest, CancellationFromAnotherThreadReturnsQuickly) {
  SilentServer server;
  auto store = OpenAt(server.endpoint());
  ASSERT_NE(store, nullptr);
  CancelSource source;
  std::atomic<int64_t> cancelled_at{0};
  std::thread canceller([&] {
    PollUntil([&] { return server.accepted() > 0; }, milliseconds(10000));
    cancelled_at = steady_clock::now().time_since_epoch().count();
    source.Cancel();
  });
  Result<std::unique_ptr<ObjectWriter>> w = store->NewWriter(Context(&source), "a.snap");
  auto returned = steady_clock::now().time_since_epoch().count();
  canceller.join();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kAborted) << w.status().ToString();
  EXPECT_EQ(w.status().reason(), Reason::kCancelled);
  EXPECT_EQ(w.status().stage(), Stage::kStorage);
  auto latency = std::chrono::duration_cast<milliseconds>(
      steady_clock::duration(returned - cancelled_at.load()));
  EXPECT_LT(latency.count(), 2000);
}

TEST(HungEndpointTest, StallsFailARequestAndTheTriesAreBounded) {
  SilentServer server;
  S3Options o;
  o.stall_time = milliseconds(500);
  o.retry.max_attempts = 3;
  o.retry.initial_backoff = milliseconds(10);
  o.retry.max_backoff = milliseconds(20);
  auto store = OpenAt(server.endpoint(), o);
  ASSERT_NE(store, nullptr);
  auto start = steady_clock::now();
  Result<ObjectInfo> r = store->Stat(Context(), "a.snap");  // no deadline at all
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kStalled);
  EXPECT_NE(r.status().message().find("failed after 3 attempts"), std::string::npos)
      << r.status().message();
  EXPECT_LT(Since(start).count(), 3 * 500 + 3000);
  EXPECT_EQ(server.accepted(), 3);  // a stalled connection is never reused
}

TEST(HungEndpointTest, CleanupAfterACancelledUploadIsBounded) {
  HangingS3 s3;
  auto store = OpenAt(s3.endpoint());  // default retries and a 60 s stall time
  ASSERT_NE(store, nullptr);
  CancelSource source;
  Context ctx(&source);
  Result<std::unique_ptr<ObjectWriter>> w = store->NewWriter(ctx, "a.snap");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::string part(kMinPartSize + 1, 'x');
  ASSERT_TRUE((*w)->Append(ctx, part).ok());  // part 1 goes out, and hangs
  ASSERT_TRUE(PollUntil([&] { return s3.parts() > 0; }, milliseconds(10000)));
  source.Cancel();
  auto start = steady_clock::now();
  Status s = (*w)->Append(ctx, "more");
  EXPECT_EQ(s.code(), Code::kAborted) << s.ToString();
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  // The failed Append aborted the upload: the part was stopped and AbortMultipartUpload tried,
  // within the cleanup budget although the endpoint never answers.
  milliseconds took = Since(start);
  EXPECT_LT(took.count(), kCleanupBudget.count() + 3000) << took.count() << " ms";
  EXPECT_GE(s3.aborts(), 1);
  EXPECT_LE(s3.aborts(), kCleanupAttempts);
  (*w)->Abort();  // nothing more to do
  EXPECT_LT(Since(start).count(), kCleanupBudget.count() + 3000);
}

}  // namespace
}  // namespace bao::storage
