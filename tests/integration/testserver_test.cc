// Integration tests of bao-testserver itself: it must behave as openbao-api.md describes,
// since every other integration test trusts it. Snapshots are read back with libarchive (an
// independent reader), not with the product's own checker.
#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
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
using ::testing::HasSubstr;

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

TEST(TestServer, StandbyRedirectsOrForwards) {
  auto server = StartServer({.standby_mode = "redirect"});
  ASSERT_NE(server, nullptr);
  const std::string token = server->admin_token();
  auto redirected = Call(*server, "GET", server->Url(1) + kSnapshot + "?x=1", token);
  EXPECT_EQ(redirected.status, 307);
  EXPECT_EQ(redirected.location, server->Url(0) + kSnapshot + "?x=1");
  // A restore sent to a redirecting standby is redirected too (and not applied there).
  auto before = server->State();
  ASSERT_TRUE(before.ok());
  std::string archive = Call(*server, "GET", server->Url(0) + kSnapshot, token).body;
  auto restore = Call(*server, "POST", server->Url(2) + kSnapshot, token, archive);
  EXPECT_EQ(restore.status, 307);
  EXPECT_EQ(restore.location, server->Url(0) + kSnapshot);
  EXPECT_EQ((*server->State())["index"], (*before)["index"]);

  ASSERT_OK(server->SetStandbyMode("forward"));
  ASSERT_OK(server->ClearRequests());
  auto forwarded = Call(*server, "GET", server->Url(1) + kSnapshot, token);
  ASSERT_EQ(forwarded.status, 200);
  EXPECT_TRUE(CheckSnapshot(forwarded.body).ok());
  auto requests = server->Requests();
  ASSERT_TRUE(requests.ok());
  ASSERT_EQ(requests->size(), 1u);
  EXPECT_EQ((*requests)[0]["node"], 1);
  EXPECT_EQ((*requests)[0]["method"], "GET");
  EXPECT_EQ((*requests)[0]["path"], kSnapshot);
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
  EXPECT_EQ(meta["ID"].get<std::string>().rfind(
                std::to_string((*state)["term"].get<uint64_t>()) + "-" +
                    std::to_string((*state)["index"].get<uint64_t>()) + "-",
                0),
            0u);
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

  // Other keys: the plain restore is refused and points at snapshot-force.
  auto refused =
      Call(*target, "POST", target->Url(0) + kSnapshot, target->admin_token(), snapshot.body);
  EXPECT_EQ(refused.status, 400);
  EXPECT_THAT(Errors(refused), HasSubstr("snapshot-force"));
  EXPECT_EQ((*target->State())["digest"], target_before["digest"]);

  // Forced restore (through a standby, forwarded) replaces the state.
  auto forced =
      Call(*target, "POST", target->Url(2) + kSnapshotForce, target->admin_token(), snapshot.body);
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

  // A complete body that is not a valid snapshot: truncated archive, flipped byte, garbage.
  auto truncated =
      Call(*server, "POST", url, server->admin_token(), snapshot.substr(0, snapshot.size() - 100));
  EXPECT_EQ(truncated.status, 400);
  std::string flipped = snapshot;
  flipped[snapshot.size() / 2] ^= 0x10;
  auto corrupt = Call(*server, "POST", url, server->admin_token(), flipped);
  EXPECT_EQ(corrupt.status, 400);
  EXPECT_EQ(Call(*server, "POST", url, server->admin_token(), "not a snapshot").status, 400);

  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = server->Requests();
        return r.ok() && r->size() >= 4;
      },
      std::chrono::seconds(5)));
  auto after = *server->State();
  EXPECT_EQ(after["digest"], before["digest"]);
  EXPECT_EQ(after["index"], before["index"]);
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
  auto mode = bao::testing::Run({BuildBinary("bao-testserver"), "--standby-mode", "sideways"}, {},
                                std::chrono::seconds(20));
  EXPECT_NE(mode.exit_code, 0);
  EXPECT_THAT(mode.err, HasSubstr("standby-mode"));
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
