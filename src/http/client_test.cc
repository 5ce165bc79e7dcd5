// Client::Do's cancellation, deadline and stall handling, and ClientPool's connection reuse,
// against a raw TCP server on 127.0.0.1 that answers only as each test scripts it.
#include "http/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bao::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Accepts connections and hands each to `serve` on its own thread. `serve` gets the socket and
// a stop flag; whatever it does not answer stays unanswered until the server is destroyed.
class RawServer {
 public:
  using Serve = std::function<void(int fd, const std::atomic<bool>& stop)>;

  explicit RawServer(Serve serve) : serve_(std::move(serve)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listen_fd_, 16);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~RawServer() {
    stop_ = true;
    acceptor_.join();
    close(listen_fd_);
    for (std::thread& t : conns_) t.join();
  }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int accepted() const { return accepted_.load(); }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++accepted_;
      conns_.emplace_back([this, fd] {
        serve_(fd, stop_);
        close(fd);
      });
    }
  }

  Serve serve_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> conns_;  // touched by the acceptor thread only, then joined
};

// Reads one request's header block; false when the peer closed or the server stops.
bool ReadRequestHead(int fd, const std::atomic<bool>& stop) {
  std::string got;
  char buf[4096];
  while (!stop && got.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  return !stop;
}

void WaitForStop(const std::atomic<bool>& stop) {
  while (!stop) {
    pollfd p{-1, 0, 0};
    poll(&p, 0, 20);
  }
}

// Reads the request, then never answers.
void Hang(int fd, const std::atomic<bool>& stop) {
  ReadRequestHead(fd, stop);
  WaitForStop(stop);
}

// Answers every request on the connection with "ok" (keep-alive).
void AnswerOk(int fd, const std::atomic<bool>& stop) {
  while (ReadRequestHead(fd, stop)) {
    std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (write(fd, answer.data(), answer.size()) < 0) return;
  }
}

milliseconds Since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

TEST(HttpClientTest, AContextCancelledBeforehandSendsNothing) {
  RawServer server(Hang);
  CancelSource source;
  source.Cancel();
  Request req;
  req.url = server.url();
  req.ctx = Context(&source);
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kAborted);
  EXPECT_EQ(r.status().reason(), Reason::kCancelled);
  EXPECT_EQ(server.accepted(), 0);
}

TEST(HttpClientTest, CancellationFromAnotherThreadEndsAHungRequestQuickly) {
  RawServer server(Hang);
  CancelSource source;
  std::thread canceller([&] {
    // Cancel once the request is with the server (polling, with a deadline).
    auto until = steady_clock::now() + std::chrono::seconds(10);
    while (server.accepted() == 0 && steady_clock::now() < until) std::this_thread::yield();
    source.Cancel();
  });
  Request req;
  req.url = server.url();
  req.ctx = Context(&source);
  Client client;
  Result<Response> r = client.Do(req);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kAborted) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kCancelled);
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClientTest, CancellationIsNoticedWithinAboutASecond) {
  RawServer server(Hang);
  CancelSource source;
  std::atomic<int64_t> cancel_time{0};
  std::thread canceller([&] {
    auto until = steady_clock::now() + std::chrono::seconds(10);
    while (server.accepted() == 0 && steady_clock::now() < until) std::this_thread::yield();
    cancel_time = steady_clock::now().time_since_epoch().count();
    source.Cancel();
  });
  Request req;
  req.url = server.url();
  req.ctx = Context(&source);
  Client client;
  Result<Response> r = client.Do(req);
  auto returned = steady_clock::now().time_since_epoch().count();
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), Reason::kCancelled);
  auto latency = std::chrono::duration_cast<milliseconds>(
      steady_clock::duration(returned - cancel_time.load()));
  EXPECT_LT(latency.count(), 2000);
}

TEST(HttpClientTest, TheContextDeadlineBoundsTheRequest) {
  RawServer server(Hang);
  Request req;
  req.url = server.url();
  req.timeout = std::chrono::seconds(60);  // longer than the deadline: the deadline wins
  req.ctx = Context().WithTimeout(milliseconds(700));
  auto start = steady_clock::now();
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kTimeout);
  EXPECT_GE(Since(start).count(), 650);
  EXPECT_LT(Since(start).count(), 2500);
}

TEST(HttpClientTest, APassedDeadlineSendsNothing) {
  RawServer server(Hang);
  Request req;
  req.url = server.url();
  req.ctx = Context().WithDeadline(steady_clock::now() - milliseconds(1));
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded);
  EXPECT_EQ(r.status().reason(), Reason::kTimeout);
  EXPECT_EQ(server.accepted(), 0);
}

TEST(HttpClientTest, TheRequestTimeoutIsATimeout) {
  RawServer server(Hang);
  Request req;
  req.url = server.url();
  req.timeout = milliseconds(500);
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kTimeout);
}

TEST(HttpClientTest, AServerThatNeverAnswersIsAStall) {
  RawServer server(Hang);
  Request req;
  req.url = server.url();
  req.stall_time = milliseconds(1000);
  auto start = steady_clock::now();
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kStalled);
  EXPECT_GE(Since(start).count(), 950);
  EXPECT_LT(Since(start).count(), 4000);
}

TEST(HttpClientTest, ABodyThatStopsFlowingIsAStall) {
  RawServer server([](int fd, const std::atomic<bool>& stop) {
    if (!ReadRequestHead(fd, stop)) return;
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
    if (write(fd, head.data(), head.size()) < 0) return;
    WaitForStop(stop);
  });
  Request req;
  req.url = server.url();
  req.stall_time = milliseconds(1000);
  std::string got;
  req.on_body = [&](std::string_view chunk) {
    got.append(chunk);
    return Status::Ok();
  };
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), Reason::kStalled) << r.status().ToString();
  EXPECT_EQ(got, "0123456789");
}

TEST(HttpClientTest, ARefusedConnectionIsUnreachable) {
  int port = 0;
  {
    RawServer server(Hang);  // a port that was free a moment ago, closed again
    port = std::stoi(server.url().substr(std::string("http://127.0.0.1:").size()));
  }
  Request req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), Reason::kUnreachable);
}

TEST(HttpClientTest, ABodyCallbackErrorIsReturnedUnchanged) {
  RawServer server([](int fd, const std::atomic<bool>& stop) {
    if (!ReadRequestHead(fd, stop)) return;
    std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    if (write(fd, answer.data(), answer.size()) < 0) return;
    WaitForStop(stop);
  });
  Request req;
  req.url = server.url();
  req.on_body = [](std::string_view) {
    return Error(Code::kDataLoss, Reason::kChecksumMismatch, "the reader refused");
  };
  Client client;
  Result<Response> r = client.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
  EXPECT_EQ(r.status().reason(), Reason::kChecksumMismatch);
  EXPECT_EQ(r.status().message(), "the reader refused");
}

TEST(HttpClientPoolTest, LeasedClientsReuseTheirConnection) {
  RawServer server(AnswerOk);
  ClientPool pool;
  for (int i = 0; i < 3; ++i) {
    Request req;
    req.url = server.url();
    Result<Response> r = pool.Do(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "ok");
  }
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClientPoolTest, ConcurrentLeasesGetTheirOwnClients) {
  RawServer server(AnswerOk);
  ClientPool pool;
  {
    ClientPool::Lease a = pool.Acquire();
    ClientPool::Lease b = pool.Acquire();
    EXPECT_NE(&*a, &*b);
  }
  ClientPool::Lease c = pool.Acquire();
  ClientPool::Lease d = pool.Acquire();
  EXPECT_NE(&*c, &*d);  // both came back and were handed out again, one each
}

}  // namespace
}  // namespace bao::http
