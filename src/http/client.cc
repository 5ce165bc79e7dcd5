#include "http/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/redact.h"

namespace bao::http {
namespace {

constexpr size_t kMaxCollected = 16 << 20;
// Receive buffer of a streamed response body (a snapshot download) and of any other response;
// send buffer of a request body (libcurl copies the body through it).
constexpr long kStreamBufferSize = 256L * 1024;
constexpr long kSmallBufferSize = 16L * 1024;
constexpr long kUploadBufferSize = 256L * 1024;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Transfer {
  const Request* request;
  Response* response;
  CURL* curl;
  std::string what;       // "METHOD url: " for messages
  Status callback_error;  // set when a callback aborted the transfer
  // Stall detection: bytes moved (both directions) when the current window started.
  curl_off_t window_bytes = 0;
  SteadyTime window_start{};
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t->response->headers.clear();  // a new response (after 100 Continue or a redirect)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string value(line.substr(colon + 1));
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
      value.erase(value.begin());
    }
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
      value.pop_back();
    }
    t->response->headers[Lower(line.substr(0, colon))] = value;
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->request->on_body && code >= 200 && code < 300) {
    Status s = t->request->on_body(std::string_view(data, len));
    if (!s.ok()) {
      t->callback_error = s;
      return CURL_WRITEFUNC_ERROR;
    }
    return len;
  }
  std::string& body = t->response->body;
  body.append(data, std::min(len, kMaxCollected - std::min(kMaxCollected, body.size())));
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  Result<size_t> r = t->request->body_reader(buf, size * n);
  if (!r.ok()) {
    t->callback_error = r.status();
    return CURL_READFUNC_ABORT;
  }
  return *r;
}

// Called by libcurl frequently while data moves and about once a second while it does not:
// cancellation, the deadline and stalls are decided here, on what is known, never on libcurl's
// message text.
int OnProgress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  const Request& req = *t->request;
  if (req.ctx.done()) {
    Status s = req.ctx.Check();
    t->callback_error = Error(s.code(), s.reason(), t->what + s.message());
    return 1;
  }
  if (req.stall_time.count() <= 0) return 0;
  const curl_off_t moved = dlnow + ulnow;
  const SteadyTime now = std::chrono::steady_clock::now();
  // A new response (redirect, 100 Continue) may restart the counters: any change that is not a
  // step back below the window's start counts only when it reaches stall_bytes.
  if (moved < t->window_bytes || moved - t->window_bytes >= req.stall_bytes) {
    t->window_bytes = moved;
    t->window_start = now;
    return 0;
  }
  if (now - t->window_start >= req.stall_time) {
    t->callback_error = Error(
        Code::kUnavailable, Reason::kStalled,
        t->what + "transfer stalled: fewer than " + std::to_string(req.stall_bytes) +
            " bytes moved in " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(req.stall_time)
                               .count()) +
            " ms");
    return 1;
  }
  return 0;
}

// Maps a libcurl failure from its code and from what the transfer knows (the context, whether a
// connection was made); libcurl's message text is only shown, never inspected.
Status MapCurlError(CURLcode rc, const Transfer& t, const char* errbuf, bool deadline_bound) {
  const Request& req = *t.request;
  const std::string& what = t.what;
  std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: {
      if (req.ctx.expired() || deadline_bound) {
        return Error(Code::kDeadlineExceeded, Reason::kTimeout,
                     what + "deadline exceeded (" + detail + ")");
      }
      curl_off_t pretransfer = 0;
      curl_easy_getinfo(t.curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
      if (pretransfer == 0) {  // no connection was made within the connect timeout
        return Error(Code::kUnavailable, Reason::kUnreachable,
                     what + "cannot connect (" + detail + ")");
      }
      return Error(Code::kDeadlineExceeded, Reason::kTimeout, what + "timed out (" + detail + ")");
    }
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return Error(Code::kFailedPrecondition, Reason::kTlsVerification,
                   what + "TLS verification failed (" + detail + ")");
    case CURLE_SSL_CONNECT_ERROR:
      return Error(Code::kUnavailable, Reason::kUnreachable,
                   what + "TLS handshake failed (" + detail + ")");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Error(Code::kInvalidArgument, Reason::kInvalidValue,
                   what + "bad URL (" + detail + ")");
    case CURLE_COULDNT_RESOLVE_HOST:
      return Error(Code::kUnavailable, Reason::kUnreachable,
                   what + "cannot resolve host (" + detail + ")");
    case CURLE_COULDNT_CONNECT:
      return Error(Code::kUnavailable, Reason::kUnreachable,
                   what + "cannot connect (" + detail + ")");
    default: return Error(Code::kUnavailable, Reason::kUnreachable, what + detail);
  }
}

}  // namespace

std::string Response::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? "" : it->second;
}

Client::Client() {
  GlobalInit();
  handle_ = curl_easy_init();
}

Client::~Client() {
  curl_easy_cleanup(static_cast<CURL*>(handle_));
}

Result<Response> Client::Do(const Request& req) {
  CURL* curl = static_cast<CURL*>(handle_);
  curl_easy_reset(curl);
  Response response;
  Transfer t{&req, &response, curl, req.method + " " + UrlForDisplay(req.url) + ": ", Status()};
  if (Status s = req.ctx.Check(); !s.ok()) {
    return Error(s.code(), s.reason(), t.what + s.message());
  }
  // The request's own timeout, shortened to the context's deadline when that comes first.
  long timeout_ms = static_cast<long>(req.timeout.count());
  bool deadline_bound = false;
  if (req.ctx.deadline().has_value()) {
    long left = static_cast<long>(req.ctx.Remaining(std::chrono::milliseconds(0)).count());
    if (timeout_ms <= 0 || left < timeout_ms) {
      timeout_ms = std::max(1L, left);
      deadline_bound = true;
    }
  }
  t.window_start = std::chrono::steady_clock::now();
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  // libcurl allocates both buffers for every transfer, beside the caller's own (a part upload
  // already holds its part): large ones only where bytes stream through them.
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, req.on_body ? kStreamBufferSize : kSmallBufferSize);
  curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, kUploadBufferSize);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  if (req.tls.insecure_skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!req.tls.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(req.tls.ca_pem.data()), req.tls.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  } else if (!req.tls.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, req.tls.ca_file.c_str());
  }

  bool has_body = req.body_reader || !req.body.empty() || req.method == "POST" ||
                  req.method == "PUT" || req.method == "PATCH";
  if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (req.body_reader) {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(curl, CURLOPT_READDATA, &t);
      if (req.body_length) {
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(*req.body_length));
      }
    } else {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  curl_slist* headers = nullptr;
  bool has_content_type = false;
  for (const auto& [name, value] : req.headers) {
    if (Lower(name) == "content-type") has_content_type = true;
    std::string line = name + ": " + value;
    headers = curl_slist_append(headers, line.c_str());
  }
  headers = curl_slist_append(headers,
                              req.expect_continue && has_body ? "Expect: 100-continue" : "Expect:");
  if (has_body && !has_content_type) headers = curl_slist_append(headers, "Content-Type:");
  if (req.body_reader && !req.body_length) {
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (!t.callback_error.ok()) return t.callback_error;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  if (rc != CURLE_OK) {
    // A server that refuses a request body may answer at once and close the connection; the
    // upload then fails, but the status line it sent is the real outcome.
    bool answered_mid_upload =
        (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR) && has_body && response.status >= 300;
    if (!answered_mid_upload) return MapCurlError(rc, t, errbuf, deadline_bound);
  }
  char* effective = nullptr;
  curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective != nullptr) response.effective_url = effective;
  return response;
}

ClientPool::Lease ClientPool::Acquire() {
  std::unique_ptr<Client> client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) client = std::make_unique<Client>();
  return Lease(this, std::move(client));
}

void ClientPool::Release(std::unique_ptr<Client> client) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(client));
}

std::string UrlEncode(std::string_view text, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {
std::string XmlElement(const std::string& body, const std::string& name) {
  std::string open = "<" + name + ">", close = "</" + name + ">";
  size_t a = body.find(open);
  if (a == std::string::npos) return "";
  a += open.size();
  size_t b = body.find(close, a);
  return b == std::string::npos ? "" : body.substr(a, b - a);
}
}  // namespace

std::string ErrorSummary(const Response& response) {
  const std::string& body = response.body;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (j.contains("errors") && j["errors"].is_array()) {
      std::string out;
      for (const auto& e : j["errors"]) {
        if (!e.is_string()) continue;
        if (!out.empty()) out += "; ";
        out += e.get<std::string>();
      }
      if (!out.empty()) return Redact(out);
    }
    if (j.contains("error_description") && j["error_description"].is_string()) {
      return Redact(j["error_description"].get<std::string>());
    }
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) {
        return Redact(e["message"].get<std::string>());
      }
      if (e.is_string()) return Redact(e.get<std::string>());
    }
    if (j.contains("message") && j["message"].is_string()) {
      return Redact(j["message"].get<std::string>());
    }
  }
  std::string code = XmlElement(body, "Code");
  std::string message = XmlElement(body, "Message");
  if (!code.empty() || !message.empty()) {
    return Redact(code.empty() ? message : message.empty() ? code : code + ": " + message);
  }
  std::string text = body.substr(0, 200);
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (text.empty()) return "HTTP " + std::to_string(response.status) + " with an empty body";
  return Redact(text);
}

}  // namespace bao::http
