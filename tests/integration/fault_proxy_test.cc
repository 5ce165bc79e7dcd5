// HttpFaultProxy (tests/support/fault_proxy.h) against a small cpp-httplib server, with the
// project's http::Client (libcurl) as the client: every fault kind does what it says to one
// request and leaves the next one alone, rules match and count as documented, `Expect:
// 100-continue` passes through, and the destructor does not wait for a stalled connection.
#include "support/fault_proxy.h"

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/client.h"
#include "support/testing.h"

namespace bao::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr size_t kBig = 1 << 20;

// `n` bytes that differ from one offset to the next (a lost or repeated block shows).
std::string Pattern(size_t n, uint32_t seed = 1) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

// The peer: GET /big (1 MiB), GET /small, PUT /obj (stores the body), all on 127.0.0.1.
class Upstream {
 public:
  Upstream() : big_(Pattern(kBig)) {
    srv_.Get("/big", [this](const httplib::Request&, httplib::Response& res) {
      ++gets_;
      res.set_content(big_, "application/octet-stream");
    });
    srv_.Get("/small", [this](const httplib::Request&, httplib::Response& res) {
      ++gets_;
      res.set_content("hello", "text/plain");
    });
    srv_.Put("/obj", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      puts_.push_back(req.body);
      expects_.push_back(req.get_header_value("Expect"));
      res.set_content("stored", "text/plain");
    });
    srv_.set_expect_100_continue_handler([this](const httplib::Request&, httplib::Response&) {
      ++continues_;
      return 100;
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    WaitUntil([this] { return srv_.is_running(); }, 10s);
  }
  ~Upstream() {
    srv_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  const std::string& big() const { return big_; }
  int gets() const { return gets_; }
  int continues() const { return continues_; }
  std::vector<std::string> puts() {
    std::lock_guard<std::mutex> lock(mu_);
    return puts_;
  }
  std::vector<std::string> expects() {
    std::lock_guard<std::mutex> lock(mu_);
    return expects_;
  }

 private:
  const std::string big_;
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> gets_{0};
  std::atomic<int> continues_{0};
  std::mutex mu_;
  std::vector<std::string> puts_;
  std::vector<std::string> expects_;
};

class HttpFaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(upstream_.port(), 0);
    ASSERT_GT(proxy_.port(), 0);
  }

  // GET through the proxy; every body byte received goes to `*received` (also on failure).
  Result<http::Response> Get(const std::string& path, std::string* received = nullptr,
                             std::chrono::seconds stall_time = 30s) {
    http::Request req;
    req.url = proxy_.url() + path;
    req.stall_time = stall_time;
    req.timeout = 60s;
    req.on_body = [received](std::string_view chunk) {
      if (received != nullptr) received->append(chunk);
      return Status::Ok();
    };
    http::Client client;
    return client.Do(req);
  }

  enum class Body { kBuffered, kStreamedWithLength, kStreamedChunked };
  // PUT through the proxy; `*handed` (when given) counts the bytes libcurl took from a streamed
  // body.
  Result<http::Response> Put(const std::string& path, const std::string& body,
                             bool expect_continue = false, Body mode = Body::kBuffered,
                             std::chrono::seconds stall_time = 30s, size_t* handed = nullptr) {
    http::Request req;
    req.method = "PUT";
    req.url = proxy_.url() + path;
    req.expect_continue = expect_continue;
    req.stall_time = stall_time;
    req.timeout = 60s;
    if (mode == Body::kBuffered) {
      req.body = body;
    } else {
      auto offset = std::make_shared<size_t>(0);
      req.body_reader = [&body, offset, handed](char* buf, size_t len) -> Result<size_t> {
        size_t n = std::min(len, body.size() - *offset);
        std::copy_n(body.data() + *offset, n, buf);
        *offset += n;
        if (handed != nullptr) *handed += n;
        return n;
      };
      if (mode == Body::kStreamedWithLength) req.body_length = body.size();
    }
    http::Client client;
    return client.Do(req);
  }

  Upstream upstream_;
  HttpFaultProxy proxy_{upstream_.port()};  // after upstream_: it goes first
};

TEST_F(HttpFaultProxyTest, ForwardsRequestsUntouchedWithoutRules) {
  std::string got;
  auto r = Get("/big", &got);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(got == upstream_.big());
  std::string payload = Pattern(kBig, 2);
  auto p = Put("/obj?partNumber=1", payload);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->status, 200);
  ASSERT_EQ(upstream_.puts().size(), 1u);
  EXPECT_TRUE(upstream_.puts()[0] == payload);

  EXPECT_EQ(proxy_.requests(), 2);
  auto log = proxy_.log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].method, "GET");
  EXPECT_EQ(log[0].target, "/big");
  EXPECT_EQ(log[0].status, 200);
  EXPECT_EQ(log[0].rule, -1);
  EXPECT_FALSE(log[0].injected);
  EXPECT_EQ(log[1].method, "PUT");
  EXPECT_EQ(log[1].target, "/obj?partNumber=1");
  EXPECT_EQ(log[1].status, 200);
}

TEST_F(HttpFaultProxyTest, InjectsAStatusForKRequestsThenForwards) {
  int rule = proxy_.AddRule(HttpFaultProxy::S3Status(503).WithRetryAfter("1").Times(2));
  for (int i = 0; i < 2; ++i) {
    auto r = Get("/big");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->Header("Retry-After"), "1");
    EXPECT_EQ(r->Header("Content-Type"), "application/xml");
    EXPECT_EQ(r->Header("Connection"), "close");
    EXPECT_EQ(http::ErrorSummary(*r), "SlowDown: injected");
  }
  EXPECT_EQ(upstream_.gets(), 0);  // answered by the proxy
  std::string got;
  auto r = Get("/big", &got);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(got == upstream_.big());
  EXPECT_EQ(upstream_.gets(), 1);

  EXPECT_EQ(proxy_.applied(rule), 2);
  EXPECT_EQ(proxy_.fired(rule), 2);
  EXPECT_EQ(proxy_.requests(), 3);
  auto log = proxy_.log();
  ASSERT_EQ(log.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(log[i].status, 503);
    EXPECT_EQ(log[i].rule, rule);
    EXPECT_TRUE(log[i].injected);
  }
  EXPECT_EQ(log[2].status, 200);
  EXPECT_EQ(log[2].rule, -1);
  EXPECT_FALSE(log[2].injected);
}

TEST_F(HttpFaultProxyTest, StatusBodiesMatchEachPeersErrorFormat) {
  struct Case {
    HttpFaultProxy::Rule rule;
    int status;
    std::string summary;
    std::string content_type;
  };
  std::vector<Case> cases = {
      {HttpFaultProxy::OpenBaoStatus(500), 500, "injected", "application/json"},
      {HttpFaultProxy::S3Status(500), 500, "InternalError: injected", "application/xml"},
      {HttpFaultProxy::AzureStatus(503), 503, "ServerBusy: injected", "application/xml"},
      {HttpFaultProxy::GcsStatus(429), 429, "injected", "application/json; charset=UTF-8"},
      {HttpFaultProxy::Status(502, "text/plain", "boom"), 502, "boom", "text/plain"},
  };
  for (const Case& c : cases) {
    proxy_.AddRule(c.rule);
    auto r = Get("/small");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, c.status);
    EXPECT_EQ(r->Header("Content-Type"), c.content_type);
    EXPECT_EQ(http::ErrorSummary(*r), c.summary) << r->body;
  }
  auto azure = proxy_.AddRule(HttpFaultProxy::AzureStatus(503));
  auto r = Get("/small");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Header("x-ms-error-code"), "ServerBusy");
  EXPECT_EQ(proxy_.fired(azure), 1);
  EXPECT_EQ(upstream_.gets(), 0);
}

// The proxy reads a refused request's body to its end (by Content-Length, or chunk by chunk)
// before it answers: libcurl hands over every byte, which it would not do for 16 MiB (more than
// its buffers and the sockets' hold) had the answer come first.
TEST_F(HttpFaultProxyTest, StatusReadsTheRequestBodyFirstThenTheRequestAfterGoesThrough) {
  std::string payload = Pattern(16 * kBig, 3);
  int rule = proxy_.AddRule(HttpFaultProxy::S3Status(500).Times(3));
  auto buffered = Put("/obj", payload);
  ASSERT_TRUE(buffered.ok()) << buffered.status().ToString();
  EXPECT_EQ(buffered->status, 500);
  EXPECT_EQ(http::ErrorSummary(*buffered), "InternalError: injected");
  for (Body mode : {Body::kStreamedWithLength, Body::kStreamedChunked}) {
    size_t handed = 0;
    auto r = Put("/obj", payload, /*expect_continue=*/false, mode, 30s, &handed);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(handed, payload.size());
  }
  EXPECT_EQ(proxy_.fired(rule), 3);
  EXPECT_TRUE(upstream_.puts().empty());

  auto ok = Put("/obj", payload, false, Body::kStreamedChunked);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  ASSERT_EQ(upstream_.puts().size(), 1u);
  EXPECT_TRUE(upstream_.puts()[0] == payload);
}

TEST_F(HttpFaultProxyTest, MatchesByMethodAndPathAndCountsUntilCleared) {
  int parts = proxy_.AddRule(HttpFaultProxy::S3Status(503).On("PUT", "partNumber=").Times(-1));
  auto get = Get("/small?partNumber=1");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 200);  // not a PUT
  auto other = Put("/obj?uploadId=u", "x");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->status, 200);  // no partNumber
  for (int i = 0; i < 3; ++i) {
    auto part = Put("/obj?partNumber=2&uploadId=u", "x");
    ASSERT_TRUE(part.ok());
    EXPECT_EQ(part->status, 503);
  }
  EXPECT_EQ(proxy_.applied(parts), 3);
  proxy_.ClearRules();
  auto part = Put("/obj?partNumber=2&uploadId=u", "x");
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->status, 200);
  EXPECT_EQ(proxy_.applied(parts), 3);
  EXPECT_EQ(upstream_.puts().size(), 2u);
}

TEST_F(HttpFaultProxyTest, TheFirstMatchingRuleApplies) {
  int first = proxy_.AddRule(HttpFaultProxy::S3Status(500).On("PUT"));
  int second = proxy_.AddRule(HttpFaultProxy::S3Status(503));
  auto a = Put("/obj", "x");
  auto b = Put("/obj", "x");
  auto c = Put("/obj", "x");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->status, 500);
  EXPECT_EQ(b->status, 503);  // the first one is used up
  EXPECT_EQ(c->status, 200);
  EXPECT_EQ(proxy_.applied(first), 1);
  EXPECT_EQ(proxy_.applied(second), 1);
  auto log = proxy_.log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].rule, first);
  EXPECT_EQ(log[1].rule, second);
  EXPECT_EQ(log[2].rule, -1);
}

TEST_F(HttpFaultProxyTest, ResetAfterResponseBytesFailsTheClientAfterThePeerAnswered) {
  int rule = proxy_.AddRule(HttpFaultProxy::ResetAfter(100 * 1024));
  std::string got;
  auto r = Get("/big", &got);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_LE(got.size(), 100u * 1024);
  EXPECT_TRUE(got == upstream_.big().substr(0, got.size()));
  EXPECT_EQ(upstream_.gets(), 1);
  EXPECT_EQ(proxy_.fired(rule), 1);
  EXPECT_EQ(proxy_.log()[0].status, 200);  // the head went through

  got.clear();
  auto again = Get("/big", &got);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(got == upstream_.big());
}

TEST_F(HttpFaultProxyTest, ResetBeforeTheResponseLosesTheAnswerOfAHandledRequest) {
  int rule =
      proxy_.AddRule(HttpFaultProxy::ResetAfter(0, HttpFaultProxy::Where::kResponse).On("PUT"));
  auto r = Put("/obj", "payload");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(proxy_.fired(rule), 1);
  ASSERT_EQ(upstream_.puts().size(), 1u);  // the peer did the work
  EXPECT_EQ(upstream_.puts()[0], "payload");
}

TEST_F(HttpFaultProxyTest, ResetInTheRequestBodyNeverCompletesTheUpload) {
  std::string payload = Pattern(kBig, 4);
  int plain =
      proxy_.AddRule(HttpFaultProxy::ResetAfter(64 * 1024, HttpFaultProxy::Where::kRequestBody));
  auto r = Put("/obj", payload);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(proxy_.fired(plain), 1);

  int expect =
      proxy_.AddRule(HttpFaultProxy::ResetAfter(64 * 1024, HttpFaultProxy::Where::kRequestBody));
  auto e = Put("/obj", payload, /*expect_continue=*/true);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Code::kUnavailable) << e.status().ToString();
  EXPECT_EQ(proxy_.fired(expect), 1);
  EXPECT_EQ(upstream_.continues(), 1);  // the peer's 100 Continue went through, then the cut
  EXPECT_TRUE(upstream_.puts().empty());
}

TEST_F(HttpFaultProxyTest, StallFailsAClientWithAStallLimitAndClearingEndsIt) {
  int rule = proxy_.AddRule(HttpFaultProxy::StallAfter(256 * 1024).Times(-1));
  std::string got;
  auto r = Get("/big", &got, /*stall_time=*/1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("stalled"));
  EXPECT_LE(got.size(), 256u * 1024);
  EXPECT_EQ(proxy_.fired(rule), 1);

  proxy_.ClearRules();
  got.clear();
  auto again = Get("/big", &got, 1s);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(got == upstream_.big());
  EXPECT_EQ(proxy_.fired(rule), 1);
}

TEST_F(HttpFaultProxyTest, AStalledResponseResumesWhenItsRuleIsCleared) {
  int rule = proxy_.AddRule(HttpFaultProxy::StallAfter(256 * 1024));
  std::mutex mu;
  std::string got;
  Result<http::Response> result = Status(Code::kInternal, "not run");
  std::thread client([&] {
    http::Request req;
    req.url = proxy_.url() + "/big";
    req.timeout = 60s;
    req.on_body = [&](std::string_view chunk) {
      std::lock_guard<std::mutex> lock(mu);
      got.append(chunk);
      return Status::Ok();
    };
    http::Client c;
    result = c.Do(req);
  });
  ASSERT_TRUE(WaitUntil([&] { return proxy_.fired(rule) == 1; }, 20s));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_LE(got.size(), 256u * 1024);
  }
  proxy_.ClearRule(rule);
  client.join();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(got == upstream_.big());
}

TEST_F(HttpFaultProxyTest, StallInTheRequestBodyFailsTheUploadAsStalled) {
  std::string payload = Pattern(kBig, 5);
  int rule =
      proxy_.AddRule(HttpFaultProxy::StallAfter(64 * 1024, HttpFaultProxy::Where::kRequestBody));
  auto r = Put("/obj", payload, false, Body::kBuffered, /*stall_time=*/1s);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("stalled"));
  EXPECT_EQ(proxy_.fired(rule), 1);
  EXPECT_TRUE(upstream_.puts().empty());
}

TEST_F(HttpFaultProxyTest, TrickleDeliversEveryByteInSmallSteps) {
  constexpr size_t kStep = 64 * 1024;
  constexpr auto kInterval = 10ms;
  int down = proxy_.AddRule(HttpFaultProxy::Trickle(kStep, kInterval).On("GET"));
  std::string got;
  auto start = std::chrono::steady_clock::now();
  auto r = Get("/big", &got);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(got == upstream_.big());
  EXPECT_EQ(proxy_.fired(down), 1);
  // A lower bound only (the proxy waits an interval between steps: 1 MiB plus a head is 17
  // steps), which load cannot break.
  EXPECT_GE(elapsed, static_cast<int>(kBig / kStep) * kInterval);

  std::string payload = Pattern(kBig, 6);
  int up = proxy_.AddRule(
      HttpFaultProxy::Trickle(kStep, kInterval, HttpFaultProxy::Where::kRequestBody).On("PUT"));
  auto p = Put("/obj", payload);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->status, 200);
  EXPECT_EQ(proxy_.fired(up), 1);
  ASSERT_EQ(upstream_.puts().size(), 1u);
  EXPECT_TRUE(upstream_.puts()[0] == payload);
}

TEST_F(HttpFaultProxyTest, DropAfterHeadersSendsTheHeadAndNoBody) {
  int rule = proxy_.AddRule(HttpFaultProxy::DropAfterHeaders());
  std::string got;
  auto r = Get("/big", &got);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(proxy_.fired(rule), 1);
  EXPECT_EQ(proxy_.log()[0].status, 200);
  EXPECT_EQ(upstream_.gets(), 1);

  auto again = Get("/small", &got);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(got, "hello");
}

// libcurl waits up to CURLOPT_EXPECT_100_TIMEOUT_MS for `100 Continue` before it sends the body
// anyway: with a long wait and a shorter overall time-out, the upload completes only when the
// peer's 100 Continue came through the proxy.
TEST_F(HttpFaultProxyTest, ExpectContinueIsRelayedFromThePeer) {
  std::string payload = Pattern(kBig, 7);
  size_t offset = 0;
  CURL* curl = curl_easy_init();
  ASSERT_NE(curl, nullptr);
  std::string url = proxy_.url() + "/obj";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 60000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_slist* headers = curl_slist_append(nullptr, "Expect: 100-continue");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  auto reader = +[](char* buf, size_t size, size_t n, void* user) -> size_t {
    auto* state = static_cast<std::pair<const std::string*, size_t*>*>(user);
    size_t left = state->first->size() - *state->second;
    size_t len = std::min(size * n, left);
    std::copy_n(state->first->data() + *state->second, len, buf);
    *state->second += len;
    return len;
  };
  std::pair<const std::string*, size_t*> state{&payload, &offset};
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, reader);
  curl_easy_setopt(curl, CURLOPT_READDATA, &state);
  auto sink = +[](char*, size_t size, size_t n, void*) -> size_t { return size * n; };
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  ASSERT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(upstream_.continues(), 1);
  ASSERT_EQ(upstream_.puts().size(), 1u);
  EXPECT_TRUE(upstream_.puts()[0] == payload);
  EXPECT_EQ(upstream_.expects()[0], "100-continue");

  // The project's client, through the same path.
  auto r = Put("/obj", payload, /*expect_continue=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(upstream_.continues(), 2);
  ASSERT_EQ(upstream_.puts().size(), 2u);
  EXPECT_TRUE(upstream_.puts()[1] == payload);
}

TEST_F(HttpFaultProxyTest, AStatusForARequestThatExpectsContinueComesBeforeTheBody) {
  std::string payload = Pattern(kBig, 8);
  int rule = proxy_.AddRule(HttpFaultProxy::AzureStatus(503).On("PUT"));
  auto r = Put("/obj", payload, /*expect_continue=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(http::ErrorSummary(*r), "ServerBusy: injected");
  EXPECT_EQ(proxy_.fired(rule), 1);
  EXPECT_EQ(upstream_.continues(), 0);
  EXPECT_TRUE(upstream_.puts().empty());

  auto ok = Put("/obj", payload, true);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpFaultProxyTest, ARefusedPeerConnectionIsAnswered502) {
  HttpFaultProxy nowhere(FreePort());  // reserved for this process, nothing listens there
  http::Client client;
  http::Request req;
  req.url = nowhere.url() + "/small";
  auto r = client.Do(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 502);
  ASSERT_EQ(nowhere.log().size(), 1u);
  EXPECT_EQ(nowhere.log()[0].status, 502);
  EXPECT_TRUE(nowhere.log()[0].injected);
}

TEST(HttpFaultProxyLifetime, DestructorReturnsPromptlyWithAStalledConnection) {
  Upstream upstream;
  auto proxy = std::make_unique<HttpFaultProxy>(upstream.port());
  int rule = proxy->AddRule(HttpFaultProxy::StallAfter(1024));
  std::string url = proxy->url() + "/big";
  Result<http::Response> result = Status(Code::kInternal, "not run");
  std::thread client([&] {
    http::Request req;
    req.url = url;
    req.timeout = 60s;  // far longer than the assertion below allows
    http::Client c;
    result = c.Do(req);
  });
  ASSERT_TRUE(WaitUntil([&] { return proxy->fired(rule) == 1; }, 20s));
  auto start = std::chrono::steady_clock::now();
  proxy.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  client.join();
  EXPECT_FALSE(result.ok());  // the connection closed under it
}

}  // namespace
}  // namespace bao::testing
