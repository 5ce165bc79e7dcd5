// HttpFaultProxy: an HTTP/1.1 proxy for tests that injects faults into chosen requests.
//
// It sits between bao-backup and a peer (OpenBao, MinIO, fake-gcs-server, Azurite, or a test
// server) on 127.0.0.1 and imitates what the network and an overloaded or failing server do to
// one request: an error answer (500, 503, 429, with the peer's usual error body), a connection
// reset after N bytes of the request body or of the response, a stall (no data, sockets held
// open), a trickle (slow but steady), and a response cut off after its head. Each connection
// carries one request: the proxy reads the request head, forwards it upstream with
// `Connection: close` (libcurl then opens a new connection per request), relays the body both
// ways byte for byte (`Expect: 100-continue` and the peer's `100 Continue` included), and
// records every exchange (method, target, status) for assertions.
//
// What it does not do: it works at the TCP and HTTP/1.1 framing level only. It cannot fake a
// provider's semantics (an S3 part that is stored but reported failed, a GCS session that keeps
// only part of a chunk, an OpenBao standby redirect); those need the peer itself or a stand-in
// server. It speaks plain HTTP only (no TLS, no HTTP/2, no CONNECT) and answers an injected
// status itself without asking the peer. It passes the Host header through unchanged, so a
// client's signatures (SigV4, Shared Key) cover the proxy's address, which is the address the
// peer then sees.
//
// Rules are checked in the order they were added when a request head arrives; the first active
// rule that matches applies to the whole request and uses up one of its `count`. A stall lasts
// until the rule is cleared (ClearRule/ClearRules; using up its count is not enough), then
// relaying resumes, or until the proxy is destroyed. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bao::testing {

class HttpFaultProxy {
 public:
  enum class Kind {
    kStatus,            // answer with `status` and `body` instead of forwarding, after reading
                        // the request body (at once when the client waits for 100 Continue)
    kResetAfterBytes,   // forward, then reset (RST) both sides after `after_bytes` of `where`
    kStall,             // forward, then relay nothing after `after_bytes` of `where`
    kTrickle,           // forward; after `after_bytes` of `where`, relay `trickle_bytes` per
                        // `trickle_interval`
    kDropAfterHeaders,  // forward the response head, then close both sides (FIN) without body
  };
  // Which bytes `after_bytes` counts.
  enum class Where {
    kRequestBody,   // the request body as relayed upstream (chunk framing included)
    kResponse,      // the response from its first byte, head (and any 100 Continue) included
    kResponseBody,  // the response body after the final head (chunk framing included)
  };

  struct Rule {
    Kind kind = Kind::kStatus;
    // Which requests: all of the non-empty criteria must hold.
    std::string method;         // exact, e.g. "PUT"
    std::string path_contains;  // substring of the request target (path and query)
    int count = 1;              // how many matching requests; -1 = until cleared, 0 = none

    // kStatus.
    int status = 503;
    std::string content_type = "text/plain";
    std::string body = "injected";
    std::string retry_after;                                   // Retry-After value, "" = none
    std::vector<std::pair<std::string, std::string>> headers;  // extra answer headers

    // kResetAfterBytes, kStall, kTrickle.
    Where where = Where::kResponseBody;
    uint64_t after_bytes = 0;

    // kTrickle.
    size_t trickle_bytes = 1024;
    std::chrono::milliseconds trickle_interval{10};

    // Chainable setters: HttpFaultProxy::S3Status(503).On("PUT", "partNumber=").Times(2).
    Rule& On(std::string m, std::string path = "") {
      method = std::move(m);
      path_contains = std::move(path);
      return *this;
    }
    Rule& Times(int k) {
      count = k;
      return *this;
    }
    Rule& WithRetryAfter(std::string value) {
      retry_after = std::move(value);
      return *this;
    }
  };

  // Rules for the usual answers. The body is the peer's error format with message "injected".
  static Rule Status(int status, std::string content_type, std::string body);
  static Rule OpenBaoStatus(int status);  // {"errors":["injected"]}
  // <Error><Code>SlowDown</Code>... for 503, TooManyRequests for 429, else InternalError.
  static Rule S3Status(int status);
  // <Error><Code>InternalError</Code>... for 500, else ServerBusy, with the x-ms-error-code
  // header Azure sends.
  static Rule AzureStatus(int status);
  static Rule GcsStatus(int status);  // {"error":{"code":N,"message":"injected"}}
  static Rule ResetAfter(uint64_t bytes, Where where = Where::kResponseBody);
  static Rule StallAfter(uint64_t bytes, Where where = Where::kResponseBody);
  static Rule Trickle(size_t bytes, std::chrono::milliseconds interval,
                      Where where = Where::kResponse);
  static Rule DropAfterHeaders();

  // One request as the proxy saw it.
  struct Exchange {
    std::string method;
    std::string target;     // path and query, as the client sent them
    int status = 0;         // final status forwarded or injected; 0 when the response head
                            // was not complete (a fault or a peer that closed early)
    int rule = -1;          // id of the rule applied, -1 when none
    bool injected = false;  // `status` was made up by the proxy (kStatus, or 502 when the
                            // peer refused the connection)
  };

  // Listens on 127.0.0.1 on a port the kernel picks (held for the proxy's life) and forwards to
  // 127.0.0.1:upstream_port. port() is 0 when it could not listen.
  explicit HttpFaultProxy(int upstream_port);
  // Closes the listener and every connection (stalled ones included) and joins the threads.
  ~HttpFaultProxy();
  HttpFaultProxy(const HttpFaultProxy&) = delete;
  HttpFaultProxy& operator=(const HttpFaultProxy&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Adds a rule after the existing ones; returns its id for the counters below.
  int AddRule(Rule rule);
  // Stops a rule from matching and releases the connections it stalls; its counters remain.
  void ClearRule(int id);
  void ClearRules();

  // Request heads received.
  int requests() const { return requests_; }
  // Requests rule `id` was applied to, and how many times its fault took effect: an answer was
  // injected, or a byte past `after_bytes` was about to be relayed (a response no longer than
  // `after_bytes`, or without a body for kDropAfterHeaders, does not count). Both are updated
  // before the client sees the effect.
  int applied(int id) const;
  int fired(int id) const;
  // Every request so far, in order of arrival. An exchange's status is set before the response
  // head is relayed to the client.
  std::vector<Exchange> log() const;

 private:
  struct RuleState;
  struct Connection;
  class Session;

  void AcceptLoop();
  std::shared_ptr<RuleState> Select(const std::string& method, const std::string& target,
                                    size_t* log_index);
  void SetStatus(size_t log_index, int status, bool injected = false);

  const int upstream_port_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a byte in wake_[0] tells every poll loop to stop
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<RuleState>> rules_;  // by id
  std::vector<Exchange> log_;
  std::vector<std::unique_ptr<Connection>> connections_;  // the acceptor's, then ~HttpFaultProxy's
  std::thread acceptor_;
};

}  // namespace bao::testing
