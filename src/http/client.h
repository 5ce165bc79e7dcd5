// A small HTTP client over libcurl: buffered or streamed request and response bodies, TLS
// with a custom CA or verification off (only when asked), timeouts, stall detection, and
// cancellation and deadlines through a Context. Messages never contain query strings or header
// values (they can hold credentials).
//
// Every error Client::Do() returns carries a Reason (status.h): kUnreachable, kTlsVerification,
// kStalled, kTimeout, kCancelled, or the reason of a body callback's own error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/context.h"
#include "common/status.h"

namespace bao::http {

struct TlsOptions {
  std::string ca_file;                // PEM bundle on disk; empty = system store
  std::string ca_pem;                 // PEM bundle in memory; wins over ca_file
  bool insecure_skip_verify = false;  // never the default
};

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  // Request body when `body_reader` is not set.
  std::string body;
  // Streamed request body: fills up to `len` bytes of `buf`, returns how many (0 = end) or an
  // error, which aborts the request and becomes Do()'s result.
  std::function<Result<size_t>(char* buf, size_t len)> body_reader;
  // Content-Length for `body_reader`; without it the body is sent chunked.
  std::optional<uint64_t> body_length;
  // Send `Expect: 100-continue` and wait (up to a second) for the server's go-ahead before the
  // body, so that a refusal arrives before a large upload starts.
  bool expect_continue = false;
  // Streamed response body for 2xx answers: called per chunk instead of collecting it. An error
  // aborts the transfer and becomes Do()'s result. Non-2xx bodies are always collected.
  std::function<Status(std::string_view)> on_body;
  std::chrono::milliseconds connect_timeout{10000};
  // The whole request; 0 = no limit of its own (the context's deadline still applies).
  std::chrono::milliseconds timeout{0};
  // The transfer fails as stalled when fewer than `stall_bytes` bytes move (sent and received
  // together) within any `stall_time`, waiting for the answer included. Zero turns it off.
  std::chrono::milliseconds stall_time{60000};
  long stall_bytes = 1;
  TlsOptions tls;
  bool follow_redirects = false;
  // Cancellation and deadline: the request is aborted (within about a second) once `ctx` is
  // cancelled, and never runs past its deadline.
  Context ctx;
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // collected body (bounded to 16 MiB)
  std::string effective_url;

  // Header value or "" when absent; `name` in any case.
  std::string Header(std::string_view name) const;
  bool ok() const { return status >= 200 && status < 300; }
};

// One connection-reusing client. Not thread-safe: use one per thread, or lease them from a
// ClientPool.
class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Performs `request`. Returns the response for any HTTP status (check `status`), also when
  // the server answered while the request body was still being sent and then closed the
  // connection (the upload breaks, but the server's answer is what counts). An error only when
  // no response arrived:
  //  - kUnavailable with Reason::kUnreachable: DNS failure, connection refused, reset or
  //    dropped, TLS handshake failure, or no connection within `connect_timeout`;
  //  - kUnavailable with Reason::kStalled: fewer than `stall_bytes` moved within `stall_time`;
  //  - kDeadlineExceeded with Reason::kTimeout: `timeout` or the context's deadline passed (the
  //    request is not started when the deadline has passed already);
  //  - kAborted with Reason::kCancelled: `ctx` was cancelled (before or during the request);
  //  - kFailedPrecondition with Reason::kTlsVerification: the peer's certificate was refused;
  //  - kInvalidArgument with Reason::kInvalidValue: a malformed URL;
  //  - the error returned by `body_reader` / `on_body`, unchanged.
  // Blocks the calling thread; callbacks run on it.
  Result<Response> Do(const Request& request);

 private:
  void* handle_;  // CURL*
};

// Idle Clients (and their open connections) shared by the threads of one user, e.g. a Store:
// a Lease hands one Client to one caller at a time and gives it back when destroyed, so
// connections are reused across requests and threads instead of one TLS handshake per request.
// Thread-safe. A Lease must not outlive its pool.
class ClientPool {
 public:
  // Keeps at most `max_idle` idle clients; more are closed when given back.
  explicit ClientPool(size_t max_idle = 16) : max_idle_(max_idle) {}
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  class Lease {
   public:
    Lease(ClientPool* pool, std::unique_ptr<Client> client)
        : pool_(pool), client_(std::move(client)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (client_) pool_->Release(std::move(client_));
    }
    Client* operator->() { return client_.get(); }
    Client& operator*() { return *client_; }

   private:
    ClientPool* pool_;
    std::unique_ptr<Client> client_;
  };

  // An idle client, or a new one when none is idle. Never blocks on other callers.
  Lease Acquire();
  // Acquire()->Do(request): the result as Client::Do() describes it.
  Result<Response> Do(const Request& request) { return Acquire()->Do(request); }

 private:
  void Release(std::unique_ptr<Client> client);

  const size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Client>> idle_;
};

// Percent-encodes per RFC 3986 (unreserved characters kept); '/' kept when `keep_slash`.
std::string UrlEncode(std::string_view text, bool keep_slash = false);

// Extracts a readable message from an error body: OpenBao/Vault {"errors": [...]}, Google
// {"error": {"message"}}, OAuth {"error_description"}, S3/Azure XML <Message>/<Code>, or the
// first 200 characters of text.
std::string ErrorSummary(const Response& response);

}  // namespace bao::http
