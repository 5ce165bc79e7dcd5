// Integration tests of bao-testserver itself: it must behave as openbao-api.md describes,
// since every other integration test trusts it. Snapshots are read back with libarchive (an
// independent reader), not with the product's own checker.
#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "common/files.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "support/bao_testserver.h"
#include "support/test_pki.h"
#include "support/testing.h"

namespace bao::testing {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kSnapshot = "/v1/sys/storage/raft/snapshot";
constexpr const char* kSnapshotForce = "/v1/sys/storage/raft/snapshot-force";

#define ASSERT_OK(expr)                              \
  do {                                               \
    auto status_ = (expr);                           \
    ASSERT_TRUE(status_.ok()) << status_.ToString(); \
  } while (0)

struct Fetch {
  Status error;      // transport error (cut, stall, ...) or ok
  long status = 0;   // HTTP status when an answer arrived
  std::string body;  // every byte received, also when the transfer failed
  std::string location;
};

Fetch Call(BaoTestServer& server, const std::string& method, const std::string& url,
           const std::string& token = "", const std::string& body = "",
           std::chrono::seconds stall = std::chrono::seconds(30)) {
  http::Client client;
  http::Request req;
  req.method = method;
  req.url = url;
  req.tls = server.Tls();
  req.stall_time = stall;
  req.timeout = std::chrono::seconds(120);
  if (!token.empty()) req.headers.emplace_back("X-Vault-Token", token);
  req.body = body;
  Fetch out;
  req.on_body = [&](std::string_view data) {
    out.body.append(data);
    return Status::Ok();
  };
  auto res = client.Do(req);
  if (!res.ok()) {
    out.error = res.status();
    return out;
  }
  out.status = res->status;
  if (!res->ok()) out.body = res->body;
  out.location = res->Header("location");
  return out;
}

std::string Errors(const Fetch& f) {
  auto doc = json::parse(f.body, nullptr, false);
  if (doc.is_discarded() || !doc.contains("errors") || !doc["errors"].is_array() ||
      doc["errors"].empty()) {
    return "<no errors field: " + f.body.substr(0, 200) + ">";
  }
  return doc["errors"][0].get<std::string>();
}

struct Member {
  std::string name;
  std::string data;
};

// Reads a whole gzip'd tar with libarchive; an error when it is not intact.
Result<std::vector<Member>> ReadArchive(const std::string& bytes) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  std::vector<Member> members;
  Status status;
  if (archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK) {
    status = DataLoss(archive_error_string(a));
  }
  while (status.ok()) {
    struct archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) {
      status = DataLoss(archive_error_string(a));
      break;
    }
    Member m{archive_entry_pathname(entry), ""};
    char buf[65536];
    while (true) {
      la_ssize_t n = archive_read_data(a, buf, sizeof buf);
      if (n < 0) {
        status = DataLoss(archive_error_string(a));
        break;
      }
      if (n == 0) break;
      m.data.append(buf, static_cast<size_t>(n));
    }
    members.push_back(std::move(m));
  }
  archive_read_free(a);
  if (!status.ok()) return status;
  return members;
}

// Checks an archive the way openbao-api.md defines "intact"; returns its state.bin digest.
Result<std::string> CheckSnapshot(const std::string& bytes) {
  BAO_ASSIGN_OR_RETURN(auto members, ReadArchive(bytes));
  std::vector<std::string> names;
  std::map<std::string, std::string> content;
  for (const auto& m : members) {
    names.push_back(m.name);
    content[m.name] = m.data;
  }
  std::vector<std::string> expected = {"meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"};
  if (names != expected) return DataLoss("unexpected members");
  std::string sums = crypto::Sha256Hex(content["meta.json"]) + "  meta.json\n" +
                     crypto::Sha256Hex(content["state.bin"]) + "  state.bin\n";
  if (sums != content["SHA256SUMS"]) return DataLoss("SHA256SUMS mismatch");
  auto meta = json::parse(content["meta.json"], nullptr, false);
  if (meta.is_discarded() || !meta["Size"].is_number_unsigned() ||
      meta["Size"].get<uint64_t>() != content["state.bin"].size()) {
    return DataLoss("meta.json Size mismatch");
  }
  return crypto::Sha256Hex(content["state.bin"]);
}

std::unique_ptr<BaoTestServer> StartServer(BaoTestServerOptions options = {}) {
  auto server = std::make_unique<BaoTestServer>(std::move(options));
  Status st = server->Start();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return st.ok() ? std::move(server) : nullptr;
}

// The keys of a JSON object, in the order they were sent.
std::vector<std::string> Keys(const std::string& body) {
  std::vector<std::string> keys;
  auto doc = ordered_json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return {"<not a JSON object: " + body + ">"};
  for (const auto& item : doc.items()) keys.push_back(item.key());
  return keys;
}

// "2026-11-30T01:44:48.8531272Z": UTC, fraction without trailing zeros, as Go's RFC3339Nano.
bool IsGoRfc3339Nano(const std::string& t) {
  const std::string shape = "dddd-dd-ddTdd:dd:dd";
  if (t.size() < shape.size() + 1 || t.back() != 'Z') return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    bool ok =
        shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(t[i])) != 0 : t[i] == shape[i];
    if (!ok) return false;
  }
  std::string frac = t.substr(shape.size(), t.size() - shape.size() - 1);
  if (frac.empty()) return true;
  if (frac.size() < 2 || frac.size() > 10 || frac[0] != '.' || frac.back() == '0') return false;
  return std::all_of(frac.begin() + 1, frac.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

// The port of "http(s)://127.0.0.1:PORT" (or "127.0.0.1:PORT"); -1 when there is none.
int PortOf(const std::string& url) {
  size_t colon = url.rfind(':');
  int port = -1;
  if (colon == std::string::npos) return -1;
  auto [ptr, ec] = std::from_chars(url.data() + colon + 1, url.data() + url.size(), port);
  return ec == std::errc() && ptr == url.data() + url.size() ? port : -1;
}

Result<std::string> Gunzip(const std::string& gz) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return Internal("inflateInit2");
  std::string out;
  std::vector<char> buf(1 << 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return DataLoss("not a complete gzip stream");
  return out;
}

std::string Gzip(const std::string& raw) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, raw.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  return out;
}

// A gzip'd ustar archive of `members` in this order, written independently of the server.
std::string MakeArchive(const std::vector<Member>& members) {
  std::string tar;
  for (const Member& m : members) {
    std::string h(512, '\0');
    std::memcpy(h.data(), m.name.data(), m.name.size());
    std::snprintf(&h[100], 8, "%07o", 0600);
    std::snprintf(&h[108], 8, "%07o", 0);
    std::snprintf(&h[116], 8, "%07o", 0);
    std::snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(m.data.size()));
    std::snprintf(&h[136], 12, "%011o", 0);
    h[156] = '0';
    std::memcpy(&h[257],
                "ustar\0"
                "00",
                8);
    std::memset(&h[148], ' ', 8);
    unsigned sum = 0;
    for (char c : h) sum += static_cast<unsigned char>(c);
    std::snprintf(&h[148], 8, "%06o", sum);
    tar += h + m.data + std::string((512 - m.data.size() % 512) % 512, '\0');
  }
  return Gzip(tar + std::string(1024, '\0'));
}

// The members of `archive` (checked by libarchive), with `edit` applied to them.
std::string Rebuild(const std::string& archive,
                    const std::function<void(std::vector<Member>&)>& edit) {
  auto members = ReadArchive(archive);
  EXPECT_TRUE(members.ok()) << members.status().ToString();
  if (!members.ok()) return "";
  edit(*members);
  return MakeArchive(*members);
}

// What a raw HTTP/1.1 client over plain TCP sees: whether the server read the request body
// and whether it kept the connection open, which client libraries hide.
struct RawExchange {
  std::string received;    // every byte until the server closed or reset the connection
  uint64_t body_sent = 0;  // body bytes the kernel took
  bool send_failed = false;
  bool closed = false;  // the server closed or reset the connection (not a receive timeout)
};

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Receives until the peer closes or resets (closed = true) or 10 s pass without data.
void ReceiveAll(int fd, RawExchange& out) {
  char buf[65536];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.received.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    out.closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    return;
  }
}

// POSTs `body_size` bytes to `path` on node `url` with `token`, without "Expect", sending the
// body while reading whatever comes back.
RawExchange RawUpload(const std::string& url, const std::string& path, const std::string& token,
                      uint64_t body_size) {
  RawExchange out;
  int fd = ConnectLoopback(PortOf(url));
  EXPECT_GE(fd, 0);
  if (fd < 0) return out;
  std::string head =
      "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: " + token +
      "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(body_size) +
      "\r\n\r\n";
  EXPECT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  std::thread reader([&] { ReceiveAll(fd, out); });
  std::string chunk(1 << 16, 'b');
  while (out.body_sent < body_size) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), body_size - out.body_sent));
    ssize_t w = send(fd, chunk.data(), n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      out.send_failed = true;
      break;
    }
    out.body_sent += static_cast<uint64_t>(w);
  }
  reader.join();
  close(fd);
  return out;
}

TEST(TestServer, HealthAndLeaderFollowRoles) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(server->NodeUrls().size(), 3u);
  auto h0 = Call(*server, "GET", server->Url(0) + "/v1/sys/health");
  auto h1 = Call(*server, "GET", server->Url(1) + "/v1/sys/health");
  EXPECT_EQ(h0.status, 200);
  EXPECT_EQ(h1.status, 429);
  auto body1 = json::parse(h1.body);
  EXPECT_EQ(body1["standby"], true);
  EXPECT_EQ(body1["sealed"], false);
  EXPECT_EQ(body1["initialized"], true);
  EXPECT_TRUE(body1["cluster_id"].is_string());
  EXPECT_EQ(Call(*server, "GET", server->Url(1) + "/v1/sys/health?standbyok=true").status, 200);

  auto l1 = Call(*server, "GET", server->Url(1) + "/v1/sys/leader");
  ASSERT_EQ(l1.status, 200);
  auto leader = json::parse(l1.body);
  EXPECT_EQ(leader["ha_enabled"], true);
  EXPECT_EQ(leader["is_self"], false);
  EXPECT_EQ(leader["leader_address"], server->Url(0));
  EXPECT_TRUE(leader["raft_committed_index"].is_number_unsigned());

  ASSERT_OK(server->SetLeader(2));
  EXPECT_EQ(Call(*server, "GET", server->Url(0) + "/v1/sys/health").status, 429);
  EXPECT_EQ(Call(*server, "GET", server->Url(2) + "/v1/sys/health").status, 200);
  auto l2 = json::parse(Call(*server, "GET", server->Url(2) + "/v1/sys/leader").body);
  EXPECT_EQ(l2["is_self"], true);
  EXPECT_EQ(l2["leader_address"], server->Url(2));
  auto index = server->LeaderIndex();
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 2);
}

TEST(TestServer, HealthAndLeaderAnswerAsOpenBao272) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto active = Call(*server, "GET", server->Url(0) + "/v1/sys/health");
  ASSERT_EQ(active.status, 200);
  EXPECT_THAT(Keys(active.body),
              ElementsAre("initialized", "sealed", "standby", "replication_performance_mode",
                          "replication_dr_mode", "server_time_utc", "version", "cluster_name",
                          "cluster_id"));
  auto a = json::parse(active.body);
  EXPECT_EQ(a["standby"], false);
  EXPECT_EQ(a["replication_performance_mode"], "primary");
  EXPECT_EQ(a["replication_dr_mode"], "disabled");
  EXPECT_EQ(a["version"], "2.7.2");
  std::string name = a["cluster_name"];
  EXPECT_TRUE(name.size() == 22 && name.starts_with("vault-cluster-") &&
              crypto::IsLowerHex(name.substr(14), 8))
      << name;

  auto standby = Call(*server, "GET", server->Url(1) + "/v1/sys/health");
  ASSERT_EQ(standby.status, 429);
  EXPECT_EQ(Keys(standby.body), Keys(active.body));
  auto b = json::parse(standby.body);
  EXPECT_EQ(b["standby"], true);
  EXPECT_EQ(b["replication_performance_mode"], "unknown");
  EXPECT_EQ(b["replication_dr_mode"], "unknown");
  EXPECT_EQ(b["cluster_id"], a["cluster_id"]);

  ASSERT_OK(server->Seal(2, true));
  auto sealed = Call(*server, "GET", server->Url(2) + "/v1/sys/health");
  ASSERT_EQ(sealed.status, 503);
  EXPECT_THAT(Keys(sealed.body),
              ElementsAre("initialized", "sealed", "standby", "replication_performance_mode",
                          "replication_dr_mode", "server_time_utc", "version"));
  auto c = json::parse(sealed.body);
  EXPECT_EQ(c["sealed"], true);
  EXPECT_EQ(c["standby"], true);
  EXPECT_EQ(c["replication_performance_mode"], "unknown");

  auto leader = Call(*server, "GET", server->Url(0) + "/v1/sys/leader");
  ASSERT_EQ(leader.status, 200);
  EXPECT_THAT(Keys(leader.body),
              ElementsAre("ha_enabled", "is_self", "active_time", "leader_address",
                          "leader_cluster_address", "raft_committed_index", "raft_applied_index"));
  auto l = json::parse(leader.body);
  EXPECT_TRUE(IsGoRfc3339Nano(l["active_time"])) << l["active_time"];
  EXPECT_EQ(l["leader_address"], server->Url(0));
  // The cluster port: https://, a port of its own.
  std::string cluster_address = l["leader_cluster_address"];
  EXPECT_THAT(cluster_address, StartsWith("https://127.0.0.1:"));
  int cluster_port = PortOf(cluster_address);
  EXPECT_GT(cluster_port, 0);
  for (const auto& url : server->NodeUrls()) EXPECT_NE(cluster_port, PortOf(url));

  auto from_standby = Call(*server, "GET", server->Url(1) + "/v1/sys/leader");
  ASSERT_EQ(from_standby.status, 200);
  EXPECT_THAT(Keys(from_standby.body),
              ElementsAre("ha_enabled", "is_self", "leader_address", "leader_cluster_address",
                          "raft_committed_index", "raft_applied_index"));
  auto s1 = json::parse(from_standby.body);
  EXPECT_EQ(s1["is_self"], false);
  EXPECT_EQ(s1["leader_address"], server->Url(0));
  EXPECT_EQ(s1["leader_cluster_address"], cluster_address);
  EXPECT_EQ(Call(*server, "GET", server->Url(2) + "/v1/sys/leader").status, 503);
}

TEST(TestServer, StandbyServesSnapshotsItselfAndRedirectsUnknownTokens) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->AddToken("reader-token-1234", {{"sys/storage/raft/snapshot", {"read"}}}));
  ASSERT_OK(server->AddToken("health-only-token", {{"sys/health", {"read"}}}));
  ASSERT_OK(server->ClearRequests());
  // A known token with the capability: the standby builds the snapshot from its own state.
  auto from_standby = Call(*server, "GET", server->Url(1) + kSnapshot, "reader-token-1234");
  ASSERT_EQ(from_standby.status, 200);
  auto requests = server->Requests();
  ASSERT_TRUE(requests.ok());
  ASSERT_EQ(requests->size(), 1u);
  EXPECT_EQ((*requests)[0]["node"], 1);
  auto digest = CheckSnapshot(from_standby.body);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(*digest, (*server->State())["digest"]);
  // The same members as the leader's (a caught-up standby).
  auto from_leader = Call(*server, "GET", server->Url(0) + kSnapshot, "reader-token-1234");
  auto standby_members = ReadArchive(from_standby.body);
  auto leader_members = ReadArchive(from_leader.body);
  ASSERT_TRUE(standby_members.ok() && leader_members.ok());
  ASSERT_EQ(standby_members->size(), leader_members->size());
  for (size_t i = 0; i < leader_members->size(); ++i) {
    EXPECT_EQ((*standby_members)[i].name, (*leader_members)[i].name);
    EXPECT_TRUE((*standby_members)[i].data == (*leader_members)[i].data)
        << (*leader_members)[i].name;
  }

  // A token the standby does not know (or none): 307 to the active node, same path and query.
  auto unknown = Call(*server, "GET", server->Url(1) + kSnapshot + "?x=1", "no-such-token-1234");
  EXPECT_EQ(unknown.status, 307);
  EXPECT_EQ(unknown.location, server->Url(0) + kSnapshot + "?x=1");
  auto none = Call(*server, "GET", server->Url(2) + kSnapshot);
  EXPECT_EQ(none.status, 307);
  EXPECT_EQ(none.location, server->Url(0) + kSnapshot);
  // A known token without the capability: 403.
  auto weak = Call(*server, "GET", server->Url(1) + kSnapshot, "health-only-token");
  EXPECT_EQ(weak.status, 403);
  EXPECT_EQ(Errors(weak), "permission denied");
  // The active node refuses an unknown token outright.
  auto on_leader = Call(*server, "GET", server->Url(0) + kSnapshot, "no-such-token-1234");
  EXPECT_EQ(on_leader.status, 403);
  EXPECT_EQ(Errors(on_leader), "permission denied");
}

TEST(TestServer, RestoreSentToAStandbyRestoresNothingAndSealsIt) {
  auto server = StartServer({.state_size = 1 << 20, .seed = 8});
  ASSERT_NE(server, nullptr);
  const std::string token = server->admin_token();
  auto snapshot = Call(*server, "GET", server->Url(0) + kSnapshot, token);
  ASSERT_EQ(snapshot.status, 200);
  auto wanted = CheckSnapshot(snapshot.body);
  ASSERT_TRUE(wanted.ok());
  ASSERT_OK(server->SetState(4096, 9).status());
  auto before = *server->State();

  auto to_standby = Call(*server, "POST", server->Url(2) + kSnapshot, token, snapshot.body);
  EXPECT_EQ(to_standby.status, 204) << to_standby.body;
  EXPECT_EQ((*server->State())["digest"], before["digest"]);
  EXPECT_EQ((*server->State())["index"], before["index"]);
  auto health = Call(*server, "GET", server->Url(2) + "/v1/sys/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(json::parse(health.body)["sealed"], true);
  EXPECT_EQ(Call(*server, "GET", server->Url(0) + "/v1/sys/health").status, 200);
  EXPECT_EQ(Call(*server, "GET", server->Url(1) + "/v1/sys/health").status, 429);

  // The same archive sent to the active node is restored.
  auto to_leader = Call(*server, "POST", server->Url(0) + kSnapshot, token, snapshot.body);
  EXPECT_EQ(to_leader.status, 204) << to_leader.body;
  EXPECT_EQ((*server->State())["digest"], *wanted);
}

TEST(TestServer, RefusedUploadIsAnsweredWithoutReadingTheBody) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->AddToken("reader-token-1234", {{"sys/storage/raft/snapshot", {"read"}}}));
  auto before = *server->State();
  constexpr uint64_t kBody = 64ull << 20;  // far more than the socket buffers hold
  struct Case {
    const char* name;
    int node;
    const char* path;
    const char* token;
    const char* status_line;
  };
  for (const Case& c : {
           Case{"missing update capability", 0, kSnapshot, "reader-token-1234", "HTTP/1.1 403"},
           Case{"unknown token, force", 0, kSnapshotForce, "no-such-token-1234", "HTTP/1.1 403"},
           Case{"unknown token on a standby", 1, kSnapshot, "no-such-token-1234", "HTTP/1.1 307"},
       }) {
    auto started = std::chrono::steady_clock::now();
    RawExchange r = RawUpload(server->Url(c.node), c.path, c.token, kBody);
    // The answer arrives, the body is not read (the upload breaks off), the connection closes.
    EXPECT_THAT(r.received, StartsWith(c.status_line)) << c.name;
    EXPECT_THAT(r.received, HasSubstr("Connection: close")) << c.name;
    EXPECT_TRUE(r.send_failed) << c.name;
    EXPECT_LT(r.body_sent, kBody) << c.name;
    EXPECT_TRUE(r.closed) << c.name;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(8)) << c.name;
    if (c.status_line == std::string("HTTP/1.1 403")) {
      EXPECT_THAT(r.received, HasSubstr(R"({"errors":["permission denied"]})")) << c.name;
    } else {
      EXPECT_THAT(r.received, HasSubstr("Location: " + server->Url(0) + c.path)) << c.name;
    }
  }
  EXPECT_EQ((*server->State())["index"], before["index"]);
}

// Reading a restore stops at the first damage: the 500 comes at once, the rest of the body is
// not read, and the connection closes.
TEST(TestServer, DamagedUploadIsRefusedAtTheFirstDamage) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto before = *server->State();
  constexpr uint64_t kBody = 64ull << 20;
  RawExchange r = RawUpload(server->Url(0), kSnapshotForce, server->admin_token(), kBody);
  EXPECT_THAT(r.received, StartsWith("HTTP/1.1 500"));
  EXPECT_THAT(r.received, HasSubstr("Connection: close"));
  EXPECT_THAT(r.received,
              HasSubstr(R"({"errors":["failed to decompress snapshot: gzip: invalid header"]})"));
  EXPECT_TRUE(r.send_failed);
  EXPECT_LT(r.body_sent, kBody);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ((*server->State())["index"], before["index"]);
}

TEST(TestServer, RefusedUploadWithExpectIsAnsweredBeforeTheBodyAndClosed) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->AddToken("reader-token-1234", {{"sys/storage/raft/snapshot", {"read"}}}));
  int fd = ConnectLoopback(PortOf(server->Url(0)));
  ASSERT_GE(fd, 0);
  std::string head = std::string("POST ") + kSnapshot +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: reader-token-1234\r\n"
                     "Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  // The final answer comes without "100 Continue" and before any body byte.
  std::string answer;
  ASSERT_TRUE(WaitUntil(
      [&] {
        char buf[4096];
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) == 1) {
          ssize_t n = recv(fd, buf, sizeof buf, 0);
          if (n > 0) answer.append(buf, static_cast<size_t>(n));
        }
        return answer.find("permission denied\"]}") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << answer;
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(answer, HasSubstr("Connection: close"));
  // The connection is closed: a request sent on it now is never answered.
  std::string next = "GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  (void)send(fd, next.data(), next.size(), MSG_NOSIGNAL);
  RawExchange rest;
  ReceiveAll(fd, rest);
  close(fd);
  EXPECT_TRUE(rest.closed);
  EXPECT_THAT(rest.received, Not(HasSubstr("HTTP/1.1"))) << rest.received;
}

TEST(TestServer, SealedNodesAndMissingLeader) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string token = server->admin_token();
  ASSERT_OK(server->Seal(1, true));
  auto health = Call(*server, "GET", server->Url(1) + "/v1/sys/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(json::parse(health.body)["sealed"], true);
  auto leader = Call(*server, "GET", server->Url(1) + "/v1/sys/leader");
  EXPECT_EQ(leader.status, 503);
  EXPECT_EQ(Errors(leader), "Vault is sealed");
  EXPECT_EQ(Call(*server, "GET", server->Url(1) + kSnapshot, token).status, 503);

  ASSERT_OK(server->Seal(0, true));  // the leader: no active node any more
  auto snap = Call(*server, "GET", server->Url(2) + kSnapshot, token);
  EXPECT_EQ(snap.status, 503);
  EXPECT_EQ(Errors(snap), "local node not active but active cluster node not found");
  EXPECT_EQ(
      json::parse(Call(*server, "GET", server->Url(2) + "/v1/sys/leader").body)["leader_address"],
      "");
  ASSERT_OK(server->Seal(0, false));
  EXPECT_EQ(Call(*server, "GET", server->Url(2) + kSnapshot, token).status, 200);
}

TEST(TestServer, TokensNeedTheRightCapability) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string url = server->Url(0) + kSnapshot;
  EXPECT_EQ(Call(*server, "GET", url).status, 403);
  EXPECT_EQ(Errors(Call(*server, "GET", url, "no-such-token-1234")), "permission denied");
  ASSERT_OK(server->AddToken("update-only-token", {{"sys/storage/raft/snapshot", {"update"}}}));
  ASSERT_OK(server->AddToken("reader-token-1234", {{"sys/storage/raft/snapshot", {"read"}}}));
  ASSERT_OK(server->AddToken("glob-reader-token", {{"sys/storage/*", {"read"}}}));
  EXPECT_EQ(Call(*server, "GET", url, "update-only-token").status, 403);
  EXPECT_EQ(Call(*server, "GET", url, "reader-token-1234").status, 200);
  EXPECT_EQ(Call(*server, "GET", url, "glob-reader-token").status, 200);

  http::Client client;
  http::Request bearer;
  bearer.url = url;
  bearer.headers.emplace_back("Authorization", "Bearer reader-token-1234");
  auto res = client.Do(bearer);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);

  // A reader cannot restore; the refused request leaves the state alone but is logged.
  auto before = server->State();
  ASSERT_TRUE(before.ok());
  auto snapshot = Call(*server, "GET", url, "reader-token-1234").body;
  ASSERT_OK(server->ClearRequests());
  EXPECT_EQ(Call(*server, "POST", url, "reader-token-1234", snapshot).status, 403);
  EXPECT_EQ(
      Call(*server, "POST", server->Url(0) + kSnapshotForce, "update-only-token", snapshot).status,
      403);
  EXPECT_EQ((*server->State())["index"], (*before)["index"]);
  auto requests = server->Requests();
  ASSERT_TRUE(requests.ok());
  ASSERT_EQ(requests->size(), 2u);
  EXPECT_EQ((*requests)[1]["method"], "POST");
  EXPECT_EQ((*requests)[1]["path"], kSnapshotForce);
}

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys = MakeRsaKeyPair();
    ASSERT_TRUE(keys.ok());
    keys_ = *keys;
    WriteText(dir_.File("jwt.pub"), keys_.public_pem);
    server_ = StartServer({.jwt_public_key_file = dir_.File("jwt.pub")});
    ASSERT_NE(server_, nullptr);
    ASSERT_OK(server_->AddJwtRole({{"name", "backup"},
                                   {"bound_audiences", {"openbao-internal"}},
                                   {"bound_subject", kSubject},
                                   {"policies", {{"sys/storage/raft/snapshot", {"read"}}}},
                                   {"ttl", 600}}));
  }

  json Claims() const {
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    return {{"iss", "https://kubernetes.default.svc"},
            {"sub", kSubject},
            {"aud", {"openbao-internal"}},
            {"iat", now},
            {"nbf", now},
            {"exp", now + 600}};
  }

  Fetch Login(const std::string& role, const json& claims, const std::string* key = nullptr) {
    auto jwt = MakeJwt(key != nullptr ? *key : keys_.private_pem, claims);
    EXPECT_TRUE(jwt.ok());
    return Call(*server_, "POST", server_->Url(1) + "/v1/auth/jwt-operator/login", "",
                json{{"role", role}, {"jwt", jwt.ok() ? *jwt : ""}}.dump());
  }

  static constexpr const char* kSubject = "system:serviceaccount:ns:demo-backup-serviceaccount";
  TempDir dir_;
  RsaKeyPair keys_;
  std::unique_ptr<BaoTestServer> server_;
};

TEST_F(JwtTest, GoodLoginGivesATokenWithTheRolePolicies) {
  auto login = Login("backup", Claims());
  ASSERT_EQ(login.status, 200) << login.body;
  auto auth = json::parse(login.body)["auth"];
  std::string token = auth["client_token"].get<std::string>();
  EXPECT_EQ(token.rfind("s.", 0), 0u);
  EXPECT_TRUE(auth["accessor"].is_string());
  EXPECT_EQ(auth["lease_duration"], 600);
  EXPECT_EQ(auth["renewable"], true);
  EXPECT_THAT(auth["policies"].get<std::vector<std::string>>(), ::testing::Contains("backup"));
  EXPECT_EQ(Call(*server_, "GET", server_->Url(0) + kSnapshot, token).status, 200);
  EXPECT_EQ(Call(*server_, "POST", server_->Url(0) + kSnapshot, token, "x").status, 403);
  // A string audience works as well as a list.
  json claims = Claims();
  claims["aud"] = "openbao-internal";
  EXPECT_EQ(Login("backup", claims).status, 200);
}

TEST_F(JwtTest, BadLoginsAreRefusedWithOpenBaoMessages) {
  json wrong_aud = Claims();
  wrong_aud["aud"] = {"somebody-else"};
  auto aud = Login("backup", wrong_aud);
  EXPECT_EQ(aud.status, 400);
  EXPECT_THAT(Errors(aud), HasSubstr("invalid audience (aud) claim"));

  json wrong_sub = Claims();
  wrong_sub["sub"] = "system:serviceaccount:ns:other";
  auto sub = Login("backup", wrong_sub);
  EXPECT_EQ(sub.status, 400);
  EXPECT_EQ(Errors(sub), "sub claim does not match bound subject");

  json expired = Claims();
  expired["exp"] = expired["iat"].get<int64_t>() - 3600;
  auto exp = Login("backup", expired);
  EXPECT_EQ(exp.status, 400);
  EXPECT_THAT(Errors(exp), HasSubstr("token is expired"));

  auto role = Login("no-such-role", Claims());
  EXPECT_EQ(role.status, 400);
  EXPECT_EQ(Errors(role), "role \"no-such-role\" could not be found");

  auto other = MakeRsaKeyPair();
  ASSERT_TRUE(other.ok());
  auto forged = Login("backup", Claims(), &other->private_pem);
  EXPECT_EQ(forged.status, 400);
  EXPECT_THAT(Errors(forged), HasSubstr("failed to verify id token signature"));

  // Within the 60 s leeway an just-expired token still works.
  json recent = Claims();
  recent["exp"] = recent["iat"].get<int64_t>() - 30;
  EXPECT_EQ(Login("backup", recent).status, 200);
}

TEST(TestServer, SnapshotIsARealArchive) {
  auto server = StartServer({.state_size = 3 * 1000 * 1000 + 7, .seed = 42});
  ASSERT_NE(server, nullptr);
  auto fetched = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
  ASSERT_EQ(fetched.status, 200);
  auto members = ReadArchive(fetched.body);
  ASSERT_TRUE(members.ok()) << members.status().ToString();
  auto digest = CheckSnapshot(fetched.body);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  auto state = server->State();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ((*state)["digest"], *digest);
  EXPECT_EQ((*state)["size"], 3000007);
  auto meta = json::parse((*members)[0].data);
  EXPECT_EQ(meta["Version"], 1);
  EXPECT_EQ(meta["Index"], (*state)["index"]);
  EXPECT_EQ(meta["Term"], (*state)["term"]);
  EXPECT_EQ(meta["Configuration"]["Servers"].size(), 3u);
  EXPECT_EQ(meta["Configuration"]["Servers"][0]["ID"], "node0");
  EXPECT_EQ(meta["ID"], "bolt-snapshot");
  EXPECT_FALSE((*members)[3].data.empty());

  // Same seed and size: same state; another seed: another state. A compressed level works too.
  auto again = StartServer({.state_size = 3 * 1000 * 1000 + 7, .seed = 42, .gzip_level = 6});
  ASSERT_NE(again, nullptr);
  auto second = Call(*again, "GET", again->Url(0) + kSnapshot, again->admin_token());
  auto digest2 = CheckSnapshot(second.body);
  ASSERT_TRUE(digest2.ok()) << digest2.status().ToString();
  EXPECT_EQ(*digest2, *digest);
  auto reseeded = again->SetState(1000, 43);
  ASSERT_TRUE(reseeded.ok());
  EXPECT_NE((*reseeded)["digest"], *digest);
  EXPECT_EQ(
      *CheckSnapshot(Call(*again, "GET", again->Url(0) + kSnapshot, again->admin_token()).body),
      (*reseeded)["digest"]);
}

// Byte-level framing as in a real OpenBao 2.7.2 snapshot (Go's archive/tar and compress/gzip).
TEST(TestServer, ArchiveIsFramedLikeOpenBao272s) {
  auto server = StartServer({.state_size = 5000, .seed = 4});
  ASSERT_NE(server, nullptr);
  auto fetched = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
  ASSERT_EQ(fetched.status, 200);
  // gzip header: deflate, no flags, MTIME 0, XFL 0, OS 255.
  ASSERT_GE(fetched.body.size(), 10u);
  EXPECT_EQ(crypto::HexEncode(fetched.body.substr(0, 10)), "1f8b08000000000000ff");
  auto tar = Gunzip(fetched.body);
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::vector<std::string> names;
  std::map<std::string, std::string> content;
  std::string first_mtime;
  size_t pos = 0;
  while (pos + 512 <= tar->size() && (*tar)[pos] != '\0') {
    std::string h = tar->substr(pos, 512);
    std::string name(h.c_str());
    names.push_back(name);
    EXPECT_EQ(h.substr(100, 8), std::string("0000600\0", 8)) << name;  // mode
    EXPECT_EQ(h.substr(108, 8), std::string("0000000\0", 8)) << name;  // uid
    EXPECT_EQ(h.substr(116, 8), std::string("0000000\0", 8)) << name;  // gid
    EXPECT_EQ(h[156], '0') << name;
    EXPECT_EQ(h.substr(257, 8), std::string("ustar\0"
                                            "00",
                                            8))
        << name;
    EXPECT_EQ(h.substr(265, 32), std::string(32, '\0')) << name;       // uname
    EXPECT_EQ(h.substr(297, 32), std::string(32, '\0')) << name;       // gname
    EXPECT_EQ(h.substr(329, 8), std::string("0000000\0", 8)) << name;  // devmajor
    EXPECT_EQ(h.substr(337, 8), std::string("0000000\0", 8)) << name;  // devminor
    std::string mtime = h.substr(136, 12);
    if (first_mtime.empty()) first_mtime = mtime;
    EXPECT_EQ(mtime, first_mtime) << name;
    uint64_t size = 0;
    std::from_chars(h.data() + 124, h.data() + 135, size, 8);
    content[name] = tar->substr(pos + 512, size);
    pos += 512 + (size + 511) / 512 * 512;
  }
  int64_t mtime = 0;
  std::from_chars(first_mtime.data(), first_mtime.data() + 11, mtime, 8);
  EXPECT_LT(std::abs(mtime - now), 120);
  EXPECT_THAT(names, ElementsAre("meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"));
  EXPECT_EQ(tar->size() - pos, 1024u);  // two zero blocks, no padding to a 10 KiB record
  EXPECT_EQ(tar->substr(pos), std::string(1024, '\0'));

  // meta.json: hashicorp/raft's SnapshotMeta as Go's json.Encoder writes it (one line + "\n").
  const std::string& meta_text = content["meta.json"];
  ASSERT_FALSE(meta_text.empty());
  EXPECT_EQ(meta_text.back(), '\n');
  EXPECT_THAT(Keys(meta_text), ElementsAre("Version", "ID", "Index", "Term", "Peers",
                                           "Configuration", "ConfigurationIndex", "Size"));
  auto meta = json::parse(meta_text);
  EXPECT_EQ(meta["ID"], "bolt-snapshot");
  EXPECT_TRUE(meta["Peers"].is_null());
  EXPECT_EQ(meta["Size"], 5000);
  auto in_order = ordered_json::parse(meta_text);
  EXPECT_THAT(Keys(in_order["Configuration"].dump()), ElementsAre("Servers"));
  ASSERT_EQ(meta["Configuration"]["Servers"].size(), 3u);
  EXPECT_THAT(Keys(in_order["Configuration"]["Servers"][0].dump()),
              ElementsAre("Suffrage", "ID", "Address"));
  // Servers carry the cluster addresses, not the API ports.
  auto leader = json::parse(Call(*server, "GET", server->Url(0) + "/v1/sys/leader").body);
  std::string cluster_address = leader["leader_cluster_address"];
  EXPECT_EQ("https://" + meta["Configuration"]["Servers"][0]["Address"].get<std::string>(),
            cluster_address);
  // SHA256SUMS.sealed is binary, not text.
  const std::string& sealed = content["SHA256SUMS.sealed"];
  EXPECT_TRUE(std::any_of(sealed.begin(), sealed.end(), [](char c) {
    return !std::isxdigit(static_cast<unsigned char>(c)) && c != '\n';
  }));
}

TEST(TestServer, CutFaultEndsTheStreamEarly) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->SetFaults({{"cut_after_bytes", 100000}, {"count", 1}}));
  auto cut = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
  EXPECT_FALSE(cut.error.ok());
  EXPECT_EQ(cut.body.size(), 100000u);
  EXPECT_FALSE(CheckSnapshot(cut.body).ok());
  // count = 1: the next snapshot is whole.
  auto whole = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
  ASSERT_TRUE(whole.error.ok()) << whole.error.ToString();
  EXPECT_TRUE(CheckSnapshot(whole.body).ok());
}

TEST(TestServer, CorruptFaultFlipsOneBit) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto clean = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
  ASSERT_TRUE(CheckSnapshot(clean.body).ok());
  ASSERT_OK(server->SetFaults({{"corrupt_at_byte", 300000}}));
  auto bad = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
  ASSERT_TRUE(bad.error.ok());
  EXPECT_EQ(bad.status, 200);
  ASSERT_EQ(bad.body.size(), clean.body.size());
  size_t differing = 0;
  for (size_t i = 0; i < bad.body.size(); ++i) {
    // Byte 300000 lies in state.bin; the tar mtimes and meta.json ID may differ between the two
    // downloads, so look only at that byte and its neighbourhood.
    if (i > 290000 && i < 310000 && bad.body[i] != clean.body[i]) ++differing;
  }
  EXPECT_EQ(differing, 1u);
  EXPECT_EQ(static_cast<unsigned char>(bad.body[300000] ^ clean.body[300000]), 1u);
  EXPECT_FALSE(CheckSnapshot(bad.body).ok());
}

TEST(TestServer, StallFaultHoldsTheStreamUntilCleared) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->SetFaults({{"stall_after_bytes", 5000}}));
  // A client that gives up after 1 s without progress.
  auto stalled = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token(), "",
                      std::chrono::seconds(1));
  EXPECT_FALSE(stalled.error.ok());
  EXPECT_EQ(stalled.body.size(), 5000u);

  // A patient client gets the rest once the faults are cleared.
  std::atomic<bool> done{false};
  Fetch resumed;
  std::thread reader([&] {
    resumed = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
    done = true;
  });
  bool stuck = !WaitUntil([&] { return done.load(); }, std::chrono::milliseconds(700));
  EXPECT_TRUE(stuck);
  ASSERT_OK(server->ClearFaults());
  reader.join();
  ASSERT_TRUE(resumed.error.ok()) << resumed.error.ToString();
  EXPECT_TRUE(CheckSnapshot(resumed.body).ok());
}

TEST(TestServer, SealingTheServingNodeCutsAStream) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->SetFaults({{"stall_after_bytes", 5000}}));
  std::atomic<size_t> received{0};
  std::atomic<bool> done{false};
  Status result;
  std::thread reader([&] {
    http::Client client;
    http::Request req;
    req.url = server->Url(0) + kSnapshot;
    req.headers.emplace_back("X-Vault-Token", server->admin_token());
    req.on_body = [&](std::string_view data) {
      received += data.size();
      return Status::Ok();
    };
    auto res = client.Do(req);
    result = res.ok() ? Status::Ok() : res.status();
    done = true;
  });
  ASSERT_TRUE(WaitUntil([&] { return received.load() == 5000; }, std::chrono::seconds(10)));
  ASSERT_OK(server->Seal(2, true));  // an unrelated standby: the stream stays stalled
  EXPECT_FALSE(WaitUntil([&] { return done.load(); }, std::chrono::milliseconds(500)));
  ASSERT_OK(server->Seal(0, true));  // the serving, active node: the stream is cut
  EXPECT_TRUE(WaitUntil([&] { return done.load(); }, std::chrono::seconds(10)));
  reader.join();
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(received.load(), 5000u);
}

TEST(TestServer, LeaderChangeFaultCutsAndMovesLeadership) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->SetFaults({{"leader_change_after_bytes", 200000}, {"count", 1}}));
  auto term_before = (*server->State())["term"];
  auto cut = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token());
  EXPECT_FALSE(cut.error.ok());
  EXPECT_EQ(cut.body.size(), 200000u);
  EXPECT_EQ(*server->LeaderIndex(), 1);
  EXPECT_GT((*server->State())["term"].get<uint64_t>(), term_before.get<uint64_t>());
  EXPECT_EQ(Call(*server, "GET", server->Url(0) + "/v1/sys/health").status, 429);
  EXPECT_EQ(Call(*server, "GET", server->Url(1) + "/v1/sys/health").status, 200);
}

TEST(TestServer, FailStatusFaultAnswersWithAnError) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_OK(server->SetFaults({{"fail_status", 500}, {"count", 2}}));
  EXPECT_EQ(Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token()).status, 500);
  EXPECT_EQ(Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token()).status, 500);
  EXPECT_EQ(Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token()).status, 200);
}

constexpr const char* kOtherCluster =
    "could not verify hash file, possibly the snapshot is using a different set of unseal keys; "
    "use the snapshot-force API to bypass this check";

TEST(TestServer, RestoreBetweenClusters) {
  auto source = StartServer({.state_size = 2 << 20, .seed = 5, .seal_key = "seal-key-a"});
  auto target = StartServer({.state_size = 1 << 20, .seed = 9, .seal_key = "seal-key-b"});
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  auto snapshot = Call(*source, "GET", source->Url(0) + kSnapshot, source->admin_token());
  ASSERT_EQ(snapshot.status, 200);
  auto source_state = *source->State();
  auto target_before = *target->State();
  ASSERT_NE(source_state["digest"], target_before["digest"]);

  // Other keys: the plain restore is refused with OpenBao's words.
  auto refused =
      Call(*target, "POST", target->Url(0) + kSnapshot, target->admin_token(), snapshot.body);
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(Errors(refused), kOtherCluster);
  EXPECT_EQ((*target->State())["digest"], target_before["digest"]);

  // The forced restore replaces the state.
  auto forced =
      Call(*target, "POST", target->Url(0) + kSnapshotForce, target->admin_token(), snapshot.body);
  EXPECT_EQ(forced.status, 204) << forced.body;
  auto target_after = *target->State();
  EXPECT_EQ(target_after["digest"], source_state["digest"]);
  EXPECT_EQ(target_after["size"], source_state["size"]);
  EXPECT_GT(target_after["index"].get<uint64_t>(), source_state["index"].get<uint64_t>());
  EXPECT_EQ(target_after["source"], "restored");
  // And the restored state is served back identically.
  auto again = Call(*target, "GET", target->Url(0) + kSnapshot, target->admin_token());
  EXPECT_EQ(*CheckSnapshot(again.body), source_state["digest"]);

  // Same cluster, same keys: the plain endpoint accepts it.
  ASSERT_TRUE(source->SetState(4096, 77).ok());
  auto back =
      Call(*source, "POST", source->Url(0) + kSnapshot, source->admin_token(), snapshot.body);
  EXPECT_EQ(back.status, 204) << back.body;
  EXPECT_EQ((*source->State())["digest"], source_state["digest"]);
}

// OpenBao's order: the sealed hash file is opened (400 when it does not open) before any hash
// is compared (500); snapshot-force does not look at the sealed file at all.
TEST(TestServer, RestoreChecksTheSealBeforeTheHashes) {
  auto source = StartServer({.state_size = 100000, .seed = 5, .seal_key = "seal-key-a"});
  auto target = StartServer({.state_size = 1000, .seed = 9, .seal_key = "seal-key-b"});
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  auto snapshot = Call(*source, "GET", source->Url(0) + kSnapshot, source->admin_token()).body;
  std::string damaged = Rebuild(snapshot, [](std::vector<Member>& m) { m[1].data[7] ^= 1; });
  const std::string token = target->admin_token();

  auto other = Call(*target, "POST", target->Url(0) + kSnapshot, token, damaged);
  EXPECT_EQ(other.status, 400);
  EXPECT_EQ(Errors(other), kOtherCluster);
  auto forced = Call(*target, "POST", target->Url(0) + kSnapshotForce, token, damaged);
  EXPECT_EQ(forced.status, 500);
  EXPECT_EQ(Errors(forced),
            "failed to read snapshot file: failed checking integrity of snapshot: hash check "
            "failed for \"state.bin\"");
  auto same = Call(*source, "POST", source->Url(0) + kSnapshot, source->admin_token(), damaged);
  EXPECT_EQ(same.status, 500);
  EXPECT_THAT(Errors(same), HasSubstr("hash check failed for \"state.bin\""));

  // Without SHA256SUMS.sealed: refused as another cluster's, accepted with force.
  std::string unsealed = Rebuild(snapshot, [](std::vector<Member>& m) { m.pop_back(); });
  EXPECT_EQ(
      Errors(Call(*source, "POST", source->Url(0) + kSnapshot, source->admin_token(), unsealed)),
      kOtherCluster);
  EXPECT_EQ(Call(*target, "POST", target->Url(0) + kSnapshotForce, token, unsealed).status, 204);
  EXPECT_EQ((*target->State())["digest"], (*source->State())["digest"]);
}

TEST(TestServer, BrokenRestoresChangeNothing) {
  auto server = StartServer({.state_size = 1 << 20, .seed = 3});
  ASSERT_NE(server, nullptr);
  auto snapshot = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token()).body;
  ASSERT_OK(server->SetState(5000, 4).status());
  auto before = *server->State();
  const std::string url = server->Url(0) + kSnapshotForce;

  // The client disconnects half-way through the body.
  http::Client client;
  http::Request req;
  req.method = "POST";
  req.url = url;
  req.headers.emplace_back("X-Vault-Token", server->admin_token());
  req.body_length = snapshot.size();
  size_t offset = 0;
  req.body_reader = [&](char* buf, size_t len) -> Result<size_t> {
    if (offset >= snapshot.size() / 2) return Aborted("client gives up");
    size_t n = std::min(len, snapshot.size() / 2 - offset);
    std::memcpy(buf, snapshot.data() + offset, n);
    offset += n;
    return n;
  };
  EXPECT_FALSE(client.Do(req).ok());

  // A complete body that is not a valid snapshot: 500 with OpenBao's reason.
  std::string flipped = snapshot;
  flipped[snapshot.size() / 2] ^= 0x10;
  struct Case {
    const char* name;
    std::string body;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"truncated", snapshot.substr(0, snapshot.size() - 100),
            "failed to read snapshot file: failed reading snapshot: unexpected EOF"},
           {"flipped byte in state.bin", flipped,
            "failed to read snapshot file: failed checking integrity of snapshot: hash check "
            "failed for \"state.bin\""},
           {"extra member",
            Rebuild(snapshot,
                    [](std::vector<Member>& m) {
                      m.push_back({"extra.txt", "hi"});
                    }),
            "failed to read snapshot file: unexpected file \"extra.txt\" in snapshot"},
           {"not gzip", "not a snapshot", "failed to decompress snapshot: gzip: invalid header"},
       }) {
    auto answer = Call(*server, "POST", url, server->admin_token(), c.body);
    EXPECT_EQ(answer.status, 500) << c.name;
    EXPECT_EQ(Errors(answer), c.error) << c.name;
  }

  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = server->Requests();
        return r.ok() && r->size() >= 5;
      },
      std::chrono::seconds(5)));
  auto after = *server->State();
  EXPECT_EQ(after["digest"], before["digest"]);
  EXPECT_EQ(after["index"], before["index"]);

  // As in OpenBao (Go's archive/tar stops at the end blocks), nothing after the tar archive
  // is read: a damaged gzip trailer goes unnoticed.
  std::string bad_trailer = snapshot;
  bad_trailer[snapshot.size() - 8] ^= 0x01;  // the gzip CRC-32
  EXPECT_EQ(Call(*server, "POST", url, server->admin_token(), bad_trailer).status, 204);
  EXPECT_EQ((*server->State())["digest"], *CheckSnapshot(snapshot));
}

// After a 204 the Raft index is above both the old one and the snapshot's; the node keeps
// answering sys/health.
TEST(TestServer, RestoreRaisesTheRaftIndex) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto snapshot = Call(*server, "GET", server->Url(0) + kSnapshot, server->admin_token()).body;
  auto members = ReadArchive(snapshot);
  ASSERT_TRUE(members.ok());
  uint64_t snapshot_index = json::parse((*members)[0].data)["Index"];
  for (int i = 0; i < 3; ++i) ASSERT_OK(server->SetState(1000, 20 + i).status());
  auto leader_before = json::parse(Call(*server, "GET", server->Url(0) + "/v1/sys/leader").body);
  uint64_t before = leader_before["raft_applied_index"];
  ASSERT_GT(before, snapshot_index);
  auto restored =
      Call(*server, "POST", server->Url(0) + kSnapshot, server->admin_token(), snapshot);
  ASSERT_EQ(restored.status, 204) << restored.body;
  EXPECT_EQ(Call(*server, "GET", server->Url(0) + "/v1/sys/health").status, 200);
  EXPECT_EQ(Call(*server, "GET", server->Url(1) + "/v1/sys/health").status, 429);
  auto leader_after = json::parse(Call(*server, "GET", server->Url(0) + "/v1/sys/leader").body);
  EXPECT_GT(leader_after["raft_applied_index"].get<uint64_t>(), before);
  EXPECT_EQ(leader_after["raft_committed_index"], leader_after["raft_applied_index"]);
}

TEST(TestServer, ServesHttpsWithTheTestCa) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->Url(0).rfind("https://127.0.0.1:", 0), 0u);
  EXPECT_FALSE(server->ca_file().empty());
  auto health = Call(*server, "GET", server->Url(0) + "/v1/sys/health");
  EXPECT_TRUE(health.error.ok()) << health.error.ToString();
  EXPECT_EQ(health.status, 200);
  auto snap = Call(*server, "GET", server->Url(1) + kSnapshot, server->admin_token());
  EXPECT_TRUE(CheckSnapshot(snap.body).ok());
  // A refused upload over TLS: answered, then the connection closes (close_notify, FIN).
  auto refused = Call(*server, "POST", server->Url(0) + kSnapshot, "no-such-token-1234",
                      std::string(1 << 20, 'x'));
  EXPECT_EQ(refused.status, 403) << refused.error.ToString();
  EXPECT_EQ(Errors(refused), "permission denied");
  // Without the CA the certificate is not trusted.
  http::Client client;
  http::Request req;
  req.url = server->Url(0) + "/v1/sys/health";
  auto untrusted = client.Do(req);
  EXPECT_FALSE(untrusted.ok());
}

TEST(TestServer, StreamsLargeSnapshotsWithBoundedMemory) {
  constexpr uint64_t kSize = 256ull << 20;
  auto server = StartServer({.state_size = kSize, .seed = 11});
  ASSERT_NE(server, nullptr);
  // Inflate on the fly and count: nothing is kept.
  z_stream zs{};
  ASSERT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  uint64_t compressed = 0, plain = 0;
  bool stream_end = false;
  std::vector<char> out(1 << 20);
  http::Client client;
  http::Request req;
  req.url = server->Url(0) + kSnapshot;
  req.headers.emplace_back("X-Vault-Token", server->admin_token());
  req.on_body = [&](std::string_view data) -> Status {
    compressed += data.size();
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    while (zs.avail_in > 0 && !stream_end) {
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out.size());
      int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc == Z_STREAM_END)
        stream_end = true;
      else if (rc != Z_OK)
        return DataLoss("inflate failed");
      plain += out.size() - zs.avail_out;
    }
    return Status::Ok();
  };
  auto start = std::chrono::steady_clock::now();
  auto res = client.Do(req);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  inflateEnd(&zs);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(stream_end);  // gzip CRC and length verified by zlib
  EXPECT_GT(plain, kSize);
  EXPECT_LT(plain, kSize + 16 * 1024);
  std::string status = ReadText("/proc/" + std::to_string(server->pid()) + "/status");
  size_t hwm = status.find("VmHWM:");
  ASSERT_NE(hwm, std::string::npos);
  long kib = std::strtol(status.c_str() + hwm + 6, nullptr, 10);
  EXPECT_LT(kib, 128 * 1024) << "server peak RSS " << kib << " KiB";
  std::printf("256 MiB snapshot: %.2f s, %.0f MB/s, server peak RSS %ld KiB\n", seconds,
              static_cast<double>(compressed) / seconds / 1e6, kib);
}

TEST(TestServer, BadFlagsFailClearly) {
  auto r = bao::testing::Run({BuildBinary("bao-testserver"), "--nodes", "0"}, {},
                             std::chrono::seconds(20));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--nodes"));
  auto level = bao::testing::Run({BuildBinary("bao-testserver"), "--gzip-level", "12"}, {},
                                 std::chrono::seconds(20));
  EXPECT_NE(level.exit_code, 0);
  EXPECT_THAT(level.err, HasSubstr("--gzip-level"));
  // Standbys have no modes any more (they behave as OpenBao 2.7.2's do).
  auto mode = bao::testing::Run({BuildBinary("bao-testserver"), "--standby-mode", "forward"}, {},
                                std::chrono::seconds(20));
  EXPECT_NE(mode.exit_code, 0);
  EXPECT_THAT(mode.err, HasSubstr("--standby-mode"));
  auto tls = bao::testing::Run({BuildBinary("bao-testserver"), "--tls-cert", "/nonexistent.crt"},
                               {}, std::chrono::seconds(20));
  EXPECT_NE(tls.exit_code, 0);
}

TEST(TestServer, StopsGracefullyOnSigterm) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->Stop(), 0);
}

}  // namespace
}  // namespace bao::testing
