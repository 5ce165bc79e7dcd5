// A small HTTP client over libcurl: buffered or streamed request and response bodies, TLS
// with a custom CA or verification off (only when asked), timeouts, stall detection and
// cancellation. Messages never contain query strings or header values (they can hold
// credentials).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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
  std::chrono::milliseconds timeout{0};  // whole request; 0 = no limit
  // The transfer fails as stalled when fewer than `stall_bytes` move within `stall_time`.
  std::chrono::seconds stall_time{60};
  long stall_bytes = 1;
  TlsOptions tls;
  bool follow_redirects = false;
  const std::atomic<bool>* cancel = nullptr;  // when it becomes true the request is aborted
  // Cancellation and deadline of the operation the request belongs to: the request is aborted
  // when it is cancelled (kAborted, Reason::kCancelled) and never runs past its deadline.
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

// One connection-reusing client. Not thread-safe: use one per thread.
class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Performs `request`. Returns the response for any HTTP status (check `status`), also when
  // the server answered while the request body was still being sent and then closed the
  // connection (the upload breaks, but the server's answer is what counts); an error only when
  // no response arrived: kUnavailable (connection refused or reset, stall,
  // DNS), kDeadlineExceeded (timeout), kFailedPrecondition (TLS verification), kAborted
  // (cancelled), or the error returned by `body_reader` / `on_body`.
  Result<Response> Do(const Request& request);

 private:
  void* handle_;  // CURL*
};

// Percent-encodes per RFC 3986 (unreserved characters kept); '/' kept when `keep_slash`.
std::string UrlEncode(std::string_view text, bool keep_slash = false);

// Extracts a readable message from an error body: OpenBao/Vault {"errors": [...]}, Google
// {"error": {"message"}}, OAuth {"error_description"}, S3/Azure XML <Message>/<Code>, or the
// first 200 characters of text.
std::string ErrorSummary(const Response& response);

}  // namespace bao::http
