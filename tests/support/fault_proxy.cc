#include "support/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <limits>
#include <string_view>

namespace bao::testing {

struct HttpFaultProxy::RuleState {
  int id = 0;
  Rule rule;
  int remaining = 0;  // under mu_: matching requests left, -1 = unlimited, 0 = done
  std::atomic<bool> released{false};
  std::atomic<int> applied{0};
  std::atomic<int> fired{0};
};

struct HttpFaultProxy::Connection {
  std::thread thread;
  std::atomic<bool> done{false};
};

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
constexpr size_t kMaxHead = 64 * 1024;     // longer heads are refused (requests) or passed raw
constexpr size_t kReadSize = 64 * 1024;    // one recv()
constexpr size_t kBufferCap = 256 * 1024;  // read no more while this much waits to be written
constexpr auto kLingerTime = std::chrono::seconds(5);    // draining a client after the answer
constexpr auto kDiscardTime = std::chrono::seconds(60);  // reading a refused request body

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// A message head (request or status line, then header lines), without the blank line.
struct Head {
  std::string first_line;
  std::vector<std::string> lines;  // header lines as received, without CRLF

  explicit Head(std::string_view text) {
    size_t start = 0;
    bool first = true;
    while (start <= text.size()) {
      size_t end = text.find("\r\n", start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(start, end - start);
      if (first) {
        first_line = std::string(line);
        first = false;
      } else if (!line.empty()) {
        lines.emplace_back(line);
      }
      start = end + 2;
    }
  }

  static std::string_view Name(std::string_view line) {
    size_t colon = line.find(':');
    return colon == std::string_view::npos ? line : Trim(line.substr(0, colon));
  }
  // The first value of header `name`, "" when absent.
  std::string Value(std::string_view name) const {
    for (const std::string& line : lines) {
      size_t colon = line.find(':');
      if (colon != std::string::npos && IEquals(Name(line), name)) {
        return std::string(Trim(std::string_view(line).substr(colon + 1)));
      }
    }
    return "";
  }
  // The word `index` (0-based) of the first line: method/target or version/status.
  std::string Word(int index) const {
    size_t start = 0;
    for (int i = 0; i < index; ++i) {
      start = first_line.find(' ', start);
      if (start == std::string::npos) return "";
      ++start;
    }
    size_t end = first_line.find(' ', start);
    return first_line.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
};

int StatusOf(std::string_view head_text) {
  Head head(head_text);
  std::string code = head.Word(1);
  int status = 0;
  std::from_chars(code.data(), code.data() + code.size(), status);
  return status;
}

// Finds the end of a chunked body in the bytes fed to it.
class ChunkedSkipper {
 public:
  // Consumes `data`; true once the last chunk and the trailer have gone by.
  bool Feed(std::string_view data) {
    for (size_t i = 0; i < data.size() && state_ != kDone;) {
      if (state_ == kData) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left_, data.size() - i));
        left_ -= n;
        i += n;
        if (left_ == 0) state_ = kDataEnd;
        continue;
      }
      char c = data[i++];
      if (c != '\n') {
        if (line_.size() < 4096) line_.push_back(c);
        continue;
      }
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (state_ == kSize) {
        left_ = 0;
        std::from_chars(line_.data(), line_.data() + line_.size(), left_, 16);
        state_ = left_ == 0 ? kTrailer : kData;
      } else if (state_ == kDataEnd) {
        state_ = kSize;
      } else if (state_ == kTrailer && line_.empty()) {
        state_ = kDone;
      }
      line_.clear();
    }
    return state_ == kDone;
  }

 private:
  enum State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = kSize;
  uint64_t left_ = 0;
  std::string line_;
};

const char* ReasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Injected";
  }
}

void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Makes the next close() send RST instead of FIN.
void ArmReset(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

int Millis(Clock::duration d) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 50));
}

}  // namespace

// One client connection: one request, answered or relayed with the rule it matched.
class HttpFaultProxy::Session {
 public:
  Session(HttpFaultProxy* proxy, int client) : proxy_(proxy), client_(client) {}
  ~Session() {
    if (upstream_ >= 0) close(upstream_);
    close(client_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Run();

 private:
  // One direction of the relay: bytes [sent, sent + buf.size()) of the stream are read from
  // `from` and not yet written to `to`.
  struct Flow {
    int from;
    int to;
    std::string buf;
    uint64_t sent = 0;
    bool eof = false;  // `from` has no more bytes
  };

  bool Stopping() const { return proxy_->stop_; }
  // Waits up to `timeout` for `events` on `fd`; returns its revents (0 on time-out), or -1 when
  // the proxy is stopping.
  int Wait(int fd, short events, Clock::duration timeout);
  bool ReadHead(std::string* head, std::string* rest);
  bool SendAll(int fd, std::string_view data);
  bool DiscardBody(const Head& head, std::string_view rest);
  void Answer(int status, const Rule& rule, bool head_only);
  // After the last byte to the client: FIN, then read (and drop) what the client still sends
  // until it closes, so that closing does not reset a connection with unread data.
  void Linger();
  void Relay(std::string body_start);

  HttpFaultProxy* const proxy_;
  const int client_;
  int upstream_ = -1;
  std::shared_ptr<RuleState> rule_;
  size_t log_index_ = 0;
};

int HttpFaultProxy::Session::Wait(int fd, short events, Clock::duration timeout) {
  pollfd p[2] = {{proxy_->wake_[0], POLLIN, 0}, {fd, events, 0}};
  int n = poll(p, 2, Millis(timeout));
  if (Stopping() || (n > 0 && p[0].revents != 0)) return -1;
  return n > 0 ? p[1].revents : 0;
}

bool HttpFaultProxy::Session::ReadHead(std::string* head, std::string* rest) {
  std::string buf;
  char chunk[4096];
  while (true) {
    size_t end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      *head = buf.substr(0, end);
      *rest = buf.substr(end + 4);
      return true;
    }
    if (buf.size() > kMaxHead) return false;
    int ev = Wait(client_, POLLIN, std::chrono::milliseconds(50));
    if (ev < 0) return false;
    if (ev == 0) continue;
    ssize_t got = recv(client_, chunk, sizeof chunk, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return false;
    if (got > 0) buf.append(chunk, static_cast<size_t>(got));
  }
}

bool HttpFaultProxy::Session::SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t w = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (w > 0) {
      data.remove_prefix(static_cast<size_t>(w));
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EINTR) return false;
    if (Wait(fd, POLLOUT, std::chrono::milliseconds(50)) < 0) return false;
  }
  return true;
}

bool HttpFaultProxy::Session::DiscardBody(const Head& head, std::string_view rest) {
  std::string length = head.Value("content-length");
  bool chunked = head.Value("transfer-encoding").find("chunked") != std::string::npos;
  uint64_t left = 0;
  ChunkedSkipper skipper;
  if (chunked) {
    if (skipper.Feed(rest)) return true;
  } else if (!length.empty()) {
    std::from_chars(length.data(), length.data() + length.size(), left);
    left -= std::min<uint64_t>(left, rest.size());
    if (left == 0) return true;
  } else {
    return true;  // no body
  }
  char chunk[kReadSize];
  Clock::time_point deadline = Clock::now() + kDiscardTime;
  while (Clock::now() < deadline) {
    int ev = Wait(client_, POLLIN, deadline - Clock::now());
    if (ev < 0) return false;
    if (ev == 0) continue;
    ssize_t got = recv(client_, chunk, sizeof chunk, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return false;
    if (got < 0) continue;
    std::string_view data(chunk, static_cast<size_t>(got));
    if (chunked) {
      if (skipper.Feed(data)) return true;
    } else {
      left -= std::min<uint64_t>(left, data.size());
      if (left == 0) return true;
    }
  }
  return false;
}

void HttpFaultProxy::Session::Answer(int status, const Rule& rule, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
  out += "Content-Type: " + rule.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(rule.body.size()) + "\r\n";
  if (!rule.retry_after.empty()) out += "Retry-After: " + rule.retry_after + "\r\n";
  for (const auto& [name, value] : rule.headers) out += name + ": " + value + "\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head_only) out += rule.body;
  if (SendAll(client_, out)) Linger();
}

void HttpFaultProxy::Session::Linger() {
  shutdown(client_, SHUT_WR);
  char chunk[kReadSize];
  Clock::time_point deadline = Clock::now() + kLingerTime;
  while (Clock::now() < deadline) {
    int ev = Wait(client_, POLLIN, deadline - Clock::now());
    if (ev < 0) return;
    if (ev == 0) continue;
    ssize_t got = recv(client_, chunk, sizeof chunk, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return;
  }
}

void HttpFaultProxy::Session::Run() {
  std::string head_text, rest;
  if (!ReadHead(&head_text, &rest)) return;
  Head head(head_text);
  std::string method = head.Word(0);
  rule_ = proxy_->Select(method, head.Word(1), &log_index_);

  if (rule_ && rule_->rule.kind == Kind::kStatus) {
    // A server refusing a request either reads its body first, or, when the client waits for
    // `100 Continue`, answers at once (the client then does not send the body).
    bool waits_for_continue = IEquals(head.Value("expect"), "100-continue");
    if (!waits_for_continue && !DiscardBody(head, rest)) return;
    rule_->fired++;
    proxy_->SetStatus(log_index_, rule_->rule.status);
    Answer(rule_->rule.status, rule_->rule, method == "HEAD");
    return;
  }

  upstream_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(proxy_->upstream_port_));
  if (connect(upstream_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Rule refusal = Status(502, "text/plain", "fault proxy: cannot connect upstream");
    proxy_->SetStatus(log_index_, 502, /*injected=*/true);
    Answer(502, refusal, method == "HEAD");
    return;
  }
  SetNonBlocking(upstream_);

  // One request per connection: the peer closes after its answer, which ends the relay.
  std::string out = head.first_line + "\r\n";
  for (const std::string& line : head.lines) {
    std::string_view name = Head::Name(line);
    if (IEquals(name, "connection") || IEquals(name, "keep-alive") ||
        IEquals(name, "proxy-connection")) {
      continue;
    }
    out += line + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  if (!SendAll(upstream_, out)) return;
  Relay(std::move(rest));
}

void HttpFaultProxy::Session::Relay(std::string body_start) {
  Flow up{client_, upstream_, std::move(body_start)};  // the request body
  Flow down{upstream_, client_, ""};                   // the response
  bool up_dead = false;                                // the peer stopped taking the request body
  bool up_shut = false;                                // the client's end of input was passed on
  const Rule* rule = rule_ ? &rule_->rule : nullptr;

  // The fault: it fires when a byte past `fault_at` of `faulted` is about to be relayed.
  Flow* faulted = nullptr;
  uint64_t fault_at = kNever;  // known once the response head is, for kResponseBody
  if (rule != nullptr) {
    if (rule->kind == Kind::kDropAfterHeaders) {
      faulted = &down;
    } else if (rule->where == Where::kRequestBody) {
      faulted = &up;
      fault_at = rule->after_bytes;
    } else {
      faulted = &down;
      if (rule->where == Where::kResponse) fault_at = rule->after_bytes;
    }
  }
  bool fired = false;
  bool stalled = false;
  bool trickling = false;
  size_t budget = 0;  // bytes the trickle may still write in this interval
  Clock::time_point next_tick;

  // The response head: nothing past the heads parsed so far is relayed until the final one
  // (after any 1xx) is complete, so that the log's status is set before the client sees it.
  std::string scan;  // response bytes from offset `scanned`, while the head is incomplete
  uint64_t scanned = 0;
  uint64_t head_limit = 0;  // the end of the 1xx heads parsed
  bool final_head = false;
  auto parse_heads = [&] {
    while (!final_head) {
      size_t end = scan.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (scan.size() > kMaxHead) final_head = true;  // not HTTP as we know it: pass it on
        return;
      }
      size_t len = end + 4;
      int status = StatusOf(std::string_view(scan).substr(0, end));
      if (status >= 100 && status < 200 && status != 101) {  // 100 Continue and friends
        scanned += len;
        head_limit = scanned;
        scan.erase(0, len);
        continue;
      }
      final_head = true;
      proxy_->SetStatus(log_index_, status);
      if (faulted == &down && rule->kind == Kind::kDropAfterHeaders) {
        fault_at = scanned + len;
      } else if (faulted == &down && rule->where == Where::kResponseBody) {
        fault_at = scanned + len + rule->after_bytes;
      }
    }
    scan.clear();
  };

  // How many bytes of `f` may be written now.
  auto writable = [&](const Flow& f) -> size_t {
    uint64_t end = f.sent + f.buf.size();
    if (&f == &down && !final_head) end = std::min(end, head_limit);
    if (&f == faulted && !fired) end = std::min(end, fault_at);
    size_t n = static_cast<size_t>(end - f.sent);
    if (&f == faulted && trickling) n = std::min(n, budget);
    return n;
  };

  enum class End { kDone, kClose, kReset, kAbort };
  End end = End::kAbort;
  while (true) {
    if (Stopping()) break;
    if (faulted != nullptr && !fired && faulted->sent >= fault_at && !faulted->buf.empty()) {
      fired = true;
      rule_->fired++;
      if (rule->kind == Kind::kResetAfterBytes) {
        end = End::kReset;
        break;
      }
      if (rule->kind == Kind::kDropAfterHeaders) {
        end = End::kClose;
        break;
      }
      stalled = rule->kind == Kind::kStall;
      trickling = rule->kind == Kind::kTrickle;
      next_tick = Clock::now();
    }
    if (stalled) {
      if (rule_->released) {
        stalled = false;
        continue;
      }
      // Silence both ways; a client that gives up ends the connection.
      int ev = Wait(client_, POLLRDHUP, std::chrono::milliseconds(20));
      if (ev < 0) break;
      if (ev != 0) {
        end = End::kClose;
        break;
      }
      continue;
    }
    if (down.eof && down.buf.empty()) {
      end = End::kDone;  // the whole response went to the client
      break;
    }
    Clock::time_point now = Clock::now();
    if (trickling && now >= next_tick) {
      budget = std::max<size_t>(rule->trickle_bytes, 1);
      next_tick = now + rule->trickle_interval;
    }
    if (up.eof && up.buf.empty() && !up_shut && !up_dead) {
      shutdown(upstream_, SHUT_WR);  // as the peer would see it without the proxy
      up_shut = true;
    }

    size_t up_n = up_dead ? 0 : writable(up);
    size_t down_n = writable(down);
    short client_events = 0, upstream_events = 0;
    if (!up.eof && up.buf.size() < kBufferCap) client_events |= POLLIN;
    if (down_n > 0) client_events |= POLLOUT;
    if (!down.eof && down.buf.size() < kBufferCap) upstream_events |= POLLIN;
    if (up_n > 0) upstream_events |= POLLOUT;
    Clock::duration timeout = std::chrono::milliseconds(50);
    if (trickling && budget == 0) timeout = std::max(next_tick - now, Clock::duration(0));
    pollfd p[3] = {{proxy_->wake_[0], POLLIN, 0},
                   {client_events != 0 ? client_ : -1, client_events, 0},
                   {upstream_events != 0 ? upstream_ : -1, upstream_events, 0}};
    if (poll(p, 3, Millis(timeout)) <= 0) continue;
    if (p[0].revents != 0) break;

    bool failed = false;
    // Writes first, so that a hang-up seen with POLLOUT fails the write.
    auto write = [&](Flow& f, size_t n) -> bool {
      ssize_t w = send(f.to, f.buf.data(), n, MSG_NOSIGNAL);
      if (w < 0) return errno == EAGAIN || errno == EINTR;
      f.buf.erase(0, static_cast<size_t>(w));
      f.sent += static_cast<uint64_t>(w);
      if (&f == faulted && trickling) budget -= std::min(budget, static_cast<size_t>(w));
      return true;
    };
    auto read = [&](Flow& f) -> bool {
      char chunk[kReadSize];
      ssize_t got = recv(f.from, chunk, sizeof chunk, 0);
      if (got < 0) return errno == EAGAIN || errno == EINTR;
      if (got == 0) {
        f.eof = true;
        return true;
      }
      f.buf.append(chunk, static_cast<size_t>(got));
      if (&f == &down && !final_head) {
        scan.append(chunk, static_cast<size_t>(got));
        parse_heads();
      }
      return true;
    };
    short cr = p[1].revents, ur = p[2].revents;
    if (down_n > 0 && (cr & (POLLOUT | POLLERR | POLLHUP)) != 0 && !write(down, down_n)) {
      end = End::kReset;  // the client went away: the peer sees a reset, as it would
      failed = true;
    }
    if (!failed && up_n > 0 && (ur & (POLLOUT | POLLERR | POLLHUP)) != 0 && !write(up, up_n)) {
      // The peer stopped reading (it may have answered early): drop the rest of the body and
      // go on relaying its answer.
      up_dead = true;
      up.buf.clear();
    }
    if (!failed && (client_events & POLLIN) != 0 && (cr & (POLLIN | POLLERR | POLLHUP)) != 0) {
      if (!read(up)) {
        end = End::kReset;
        failed = true;
      } else if (up_dead) {
        up.buf.clear();
      }
    }
    if (!failed && (upstream_events & POLLIN) != 0 && (ur & (POLLIN | POLLERR | POLLHUP)) != 0 &&
        !read(down)) {
      end = End::kReset;  // the peer reset the connection: so does the proxy, to the client
      failed = true;
    }
    if (failed) break;
    if (down.eof && !final_head) {
      final_head = true;  // the peer closed within the head: pass on what there is
      scan.clear();
    }
  }

  switch (end) {
    case End::kDone: Linger(); break;
    case End::kClose:
      close(upstream_);
      upstream_ = -1;
      Linger();
      break;
    case End::kReset:
      ArmReset(client_);
      ArmReset(upstream_);
      break;
    case End::kAbort: break;
  }
}

HttpFaultProxy::Rule HttpFaultProxy::Status(int status, std::string content_type,
                                            std::string body) {
  Rule rule;
  rule.kind = Kind::kStatus;
  rule.status = status;
  rule.content_type = std::move(content_type);
  rule.body = std::move(body);
  return rule;
}

HttpFaultProxy::Rule HttpFaultProxy::OpenBaoStatus(int status) {
  return Status(status, "application/json", R"({"errors":["injected"]})");
}

HttpFaultProxy::Rule HttpFaultProxy::S3Status(int status) {
  std::string code = status == 503   ? "SlowDown"
                     : status == 429 ? "TooManyRequests"
                                     : "InternalError";
  return Status(status, "application/xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code +
                    "</Code><Message>injected</Message><RequestId>fault-proxy</RequestId>"
                    "</Error>");
}

HttpFaultProxy::Rule HttpFaultProxy::AzureStatus(int status) {
  std::string code = status == 500 ? "InternalError" : "ServerBusy";
  Rule rule = Status(status, "application/xml",
                     "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>" + code +
                         "</Code><Message>injected</Message></Error>");
  rule.headers.emplace_back("x-ms-error-code", code);
  return rule;
}

HttpFaultProxy::Rule HttpFaultProxy::GcsStatus(int status) {
  std::string s = std::to_string(status);
  return Status(status, "application/json; charset=UTF-8",
                R"({"error":{"code":)" + s + R"(,"message":"injected","errors":[{"message":)" +
                    R"("injected","reason":"backendError"}]}})");
}

HttpFaultProxy::Rule HttpFaultProxy::ResetAfter(uint64_t bytes, Where where) {
  Rule rule;
  rule.kind = Kind::kResetAfterBytes;
  rule.after_bytes = bytes;
  rule.where = where;
  return rule;
}

HttpFaultProxy::Rule HttpFaultProxy::StallAfter(uint64_t bytes, Where where) {
  Rule rule = ResetAfter(bytes, where);
  rule.kind = Kind::kStall;
  return rule;
}

HttpFaultProxy::Rule HttpFaultProxy::Trickle(size_t bytes, std::chrono::milliseconds interval,
                                             Where where) {
  Rule rule = ResetAfter(0, where);
  rule.kind = Kind::kTrickle;
  rule.trickle_bytes = bytes;
  rule.trickle_interval = interval;
  return rule;
}

HttpFaultProxy::Rule HttpFaultProxy::DropAfterHeaders() {
  Rule rule;
  rule.kind = Kind::kDropAfterHeaders;
  return rule;
}

HttpFaultProxy::HttpFaultProxy(int upstream_port) : upstream_port_(upstream_port) {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return;
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // the kernel picks; the socket keeps it for the proxy's life
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      listen(listen_fd_, 128) == 0) {
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
}

HttpFaultProxy::~HttpFaultProxy() {
  stop_ = true;
  if (wake_[1] >= 0) {
    char byte = 0;
    (void)!write(wake_[1], &byte, 1);  // never read: wakes every poll from now on
  }
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& c : connections_) c->thread.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

void HttpFaultProxy::AcceptLoop() {
  while (!stop_) {
    pollfd p[2] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (poll(p, 2, 50) <= 0 || p[0].revents != 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    std::erase_if(connections_, [](const std::unique_ptr<Connection>& c) {
      if (!c->done) return false;
      c->thread.join();
      return true;
    });
    auto c = std::make_unique<Connection>();
    Connection* raw = c.get();
    c->thread = std::thread([this, raw, fd] {
      {
        Session session(this, fd);
        session.Run();
      }
      raw->done = true;
    });
    connections_.push_back(std::move(c));
  }
}

std::shared_ptr<HttpFaultProxy::RuleState> HttpFaultProxy::Select(const std::string& method,
                                                                  const std::string& target,
                                                                  size_t* log_index) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_;
  std::shared_ptr<RuleState> chosen;
  for (const auto& r : rules_) {
    if (r->remaining == 0) continue;
    if (!r->rule.method.empty() && r->rule.method != method) continue;
    if (!r->rule.path_contains.empty() && target.find(r->rule.path_contains) == std::string::npos) {
      continue;
    }
    if (r->remaining > 0) --r->remaining;
    ++r->applied;
    chosen = r;
    break;
  }
  Exchange e;
  e.method = method;
  e.target = target;
  e.rule = chosen ? chosen->id : -1;
  e.injected = chosen && chosen->rule.kind == Kind::kStatus;
  *log_index = log_.size();
  log_.push_back(std::move(e));
  return chosen;
}

void HttpFaultProxy::SetStatus(size_t log_index, int status, bool injected) {
  std::lock_guard<std::mutex> lock(mu_);
  log_[log_index].status = status;
  if (injected) log_[log_index].injected = true;
}

int HttpFaultProxy::AddRule(Rule rule) {
  auto state = std::make_shared<RuleState>();
  state->rule = std::move(rule);
  state->remaining = state->rule.count < 0 ? -1 : state->rule.count;
  std::lock_guard<std::mutex> lock(mu_);
  state->id = static_cast<int>(rules_.size());
  rules_.push_back(state);
  return state->id;
}

void HttpFaultProxy::ClearRule(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (id < 0 || static_cast<size_t>(id) >= rules_.size()) return;
  rules_[id]->remaining = 0;
  rules_[id]->released = true;
}

void HttpFaultProxy::ClearRules() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : rules_) {
    r->remaining = 0;
    r->released = true;
  }
}

int HttpFaultProxy::applied(int id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return id >= 0 && static_cast<size_t>(id) < rules_.size() ? rules_[id]->applied.load() : 0;
}

int HttpFaultProxy::fired(int id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return id >= 0 && static_cast<size_t>(id) < rules_.size() ? rules_[id]->fired.load() : 0;
}

std::vector<HttpFaultProxy::Exchange> HttpFaultProxy::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

}  // namespace bao::testing
