// `bao-backup restore` (and the toolbox's DR drill) against real OpenBao 2.7.2 Raft clusters:
// same-cluster and forced cross-cluster restores, refusals, damaged backups, and a restore
// that reaches a standby.
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "crypto/crypto.h"
#include "real_openbao_fixture.h"
#include "support/azurite.h"

namespace bao::testing {
namespace {

using nlohmann::json;

class RealOpenBaoRestore : public RealOpenBaoTest {
 protected:
  // Every running node of `c` has caught up with the active node's Raft index and serves
  // `path` with `want` (reads on standbys are forwarded, so the index check is what shows each
  // node holds the data).
  void ExpectEveryNodeServes(RealBaoCluster* c, const std::string& path, const json& want,
                             const std::string& token = "root") {
    Status s = c->EveryNodeServes(path, want, token);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }

  std::string ClusterId(RealBaoCluster* c) {
    Result<BaoReply> r = c->Call(c->ActiveNode(), "GET", "sys/health", nullptr, "");
    return r.ok() ? r->body.value("cluster_id", "") : "";
  }
};

// The restore requests (anything but a read of sys/storage/raft/snapshot*) in the audit logs.
int RestoreRequests(const RealBaoCluster& c) {
  int n = 0;
  for (const json& req : c.AuditRequests()) {
    if (req.value("path", "").starts_with("sys/storage/raft/snapshot") &&
        req.value("operation", "") != "read") {
      ++n;
    }
  }
  return n;
}

TEST_F(RealOpenBaoRestore, SameClusterRestore) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->PutSecret("app", {{"password", "at-backup-time"}}).ok());
  std::string key = BackupWithRoot(c.get(), 1);
  ASSERT_FALSE(key.empty());
  ASSERT_TRUE(c->PutSecret("app", {{"password", "changed-later"}}).ok());
  std::string id = ClusterId(c.get());

  RunResult r = Restore(c->Urls(), c->root_token(), {"--key", key});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = LastJson(r);
  EXPECT_EQ(j["settled"], true) << j.dump();
  EXPECT_EQ(j["sealed"], false) << j.dump();
  EXPECT_EQ(j["clusterIdBefore"], id);
  EXPECT_EQ(j["clusterIdAfter"], id);
  EXPECT_EQ(j["nodes"].size(), 3u) << j.dump();
  ExpectEveryNodeServes(c.get(), "app", {{"password", "at-backup-time"}});
}

// A backup with an extra target (Azurite) is restored from that copy: the primary (a local
// directory) is gone, `restore --target` finds the copy by its name and OpenBao gets back the
// data of backup time.
TEST_F(RealOpenBaoRestore, RestoreFromTheExtraTargetsCopy) {
  Azurite azurite;
  std::string error;
  ASSERT_TRUE(azurite.Start(&error)) << error;
  ASSERT_EQ(azurite.Check({"create", "copies"}).exit_code, 0);
  TempDir creds, files;
  WriteText(creds.File("accountKey"), std::string(kAzuriteKey) + "\n");
  const std::string copy = files.File("copy.yaml");
  WriteText(copy, "name: azure-dr\nprovider: azure\nendpoint: " + azurite.endpoint() +
                      "\nbucket: copies\nazure: {storageAccount: " + kAzuriteAccount +
                      "}\ncredentialsDir: " + creds.path() + "\n");
  auto c = StartCluster();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->PutSecret("app", {{"password", "at-backup-time"}}).ok());
  RunResult backup = Backup({c->Url(0)}, c->root_token(), {"--extra-target", copy});
  ASSERT_EQ(backup.exit_code, 0) << Describe(backup);
  json result = LastJson(backup);
  ASSERT_EQ(result["targets"][1]["ok"], true) << result.dump();
  const std::string key = result["targets"][1]["key"];
  std::filesystem::remove_all(store_.path());  // the primary copy is lost
  ASSERT_TRUE(c->PutSecret("app", {{"password", "changed-later"}}).ok());

  RunResult r = Restore(c->Urls(), c->root_token(),
                        {"--extra-target", copy, "--target", "azure-dr", "--latest"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(LastJson(r)["restored"], key) << r.out;
  EXPECT_EQ(LastJson(r)["settled"], true) << r.out;
  ExpectEveryNodeServes(c.get(), "app", {{"password", "at-backup-time"}});
}

TEST_F(RealOpenBaoRestore, ForcedRestoreIntoFreshCluster) {
  auto a = StartCluster();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->PutSecret("app", {{"password", "from-a"}}).ok());
  ASSERT_TRUE(a->PutSecret("db", {{"user", "admin"}, {"pass", "s3cr3t"}}).ok());
  std::string key = BackupWithRoot(a.get());
  ASSERT_FALSE(key.empty());
  auto b = StartCluster();
  ASSERT_TRUE(b);
  std::string id_a = ClusterId(a.get()), id_b = ClusterId(b.get());
  ASSERT_NE(id_a, id_b);

  RunResult r = Restore(b->Urls(), b->root_token(), {"--key", key, "--force"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = LastJson(r);
  EXPECT_EQ(j["settled"], true) << j.dump();
  EXPECT_EQ(j["sealed"], true) << j.dump();
  EXPECT_EQ(j["clusterIdBefore"], id_b);
  EXPECT_TRUE(j["clusterIdAfter"].is_null()) << j.dump();
  EXPECT_NE(r.err.find("unseal keys (or recovery keys) of the cluster the snapshot came from"),
            std::string::npos)
      << r.err;

  // Every node of B needs A's key now (OpenBao issue #2455: a node left out would not
  // unseal with it), and then serves A's data under A's root token and cluster id.
  for (int i = 0; i < b->size(); ++i) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          Result<BaoReply> h = b->Call(i, "GET", "sys/health", nullptr, "");
          return h.ok() && h->body.value("sealed", false);
        },
        std::chrono::seconds(30)))
        << "node" << i << " did not seal";
  }
  Status unsealed = b->UnsealAll(a->unseal_key());
  ASSERT_TRUE(unsealed.ok()) << unsealed.ToString();
  ExpectEveryNodeServes(b.get(), "app", {{"password", "from-a"}}, a->root_token());
  ExpectEveryNodeServes(b.get(), "db", {{"user", "admin"}, {"pass", "s3cr3t"}}, a->root_token());
  EXPECT_EQ(ClusterId(b.get()), id_a);
  Result<BaoReply> old_root = b->Call(b->ActiveNode(), "GET", "sys/mounts", nullptr, "root");
  ASSERT_TRUE(old_root.ok());
  EXPECT_EQ(old_root->status, 403) << "B's old root token still works";
}

TEST_F(RealOpenBaoRestore, RefusedRestoreReportsPermissionDenied) {
  auto c = StartCluster({.nodes = 1});
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->PutSecret("app", {{"password", "kept"}}).ok());
  ASSERT_TRUE(c->Fill(16u << 20).ok());
  std::string key = BackupWithRoot(c.get());
  ASSERT_FALSE(key.empty());
  ASSERT_GE(std::filesystem::file_size(ObjectPath(key)), 16u << 20);
  ASSERT_TRUE(c->PutPolicy("snapshot-read", kSnapshotReadPolicy).ok());
  Result<std::string> reader = c->CreateToken({"snapshot-read"});
  ASSERT_TRUE(reader.ok());

  for (const std::string& token : {*reader, std::string("s.unknown-token-0000000000000")}) {
    for (bool force : {true, false}) {
      std::vector<std::string> extra = {"--key", key};
      if (force) extra.push_back("--force");
      RunResult r = Restore({c->Url(0)}, token, extra);
      EXPECT_EQ(r.exit_code, 2) << Describe(r);
      json j = LastJson(r);
      EXPECT_EQ(j["stage"], "auth") << j.dump();
      EXPECT_EQ(j["openbaoUnchanged"], true) << j.dump();  // refused: safe to retry
      std::string error = j.value("error", "");
      EXPECT_NE(error.find("permission denied"), std::string::npos) << error;
      EXPECT_NE(error.find(force ? "\"update\" capability on sys/storage/raft/snapshot-force"
                                 : "\"update\" capability on sys/storage/raft/snapshot"),
                std::string::npos)
          << error;
      EXPECT_EQ(error.find("pipe"), std::string::npos) << error;
      EXPECT_EQ(r.out.find(token), std::string::npos);
      EXPECT_EQ(r.err.find(token), std::string::npos);
    }
  }
  ExpectEveryNodeServes(c.get(), "app", {{"password", "kept"}});
}

TEST_F(RealOpenBaoRestore, RestoreWithoutForceFromOtherClusterRefused) {
  auto a = StartCluster({.nodes = 1});
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->PutSecret("app", {{"password", "from-a"}}).ok());
  std::string key = BackupWithRoot(a.get());
  auto b = StartCluster();
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->PutSecret("app", {{"password", "b-stays"}}).ok());
  std::string id_b = ClusterId(b.get());

  RunResult r = Restore(b->Urls(), b->root_token(), {"--key", key});
  EXPECT_EQ(r.exit_code, 6) << Describe(r);
  std::string error = LastJson(r).value("error", "");
  EXPECT_NE(error.find("use the snapshot-force API"), std::string::npos) << error;
  EXPECT_EQ(ClusterId(b.get()), id_b);
  ExpectEveryNodeServes(b.get(), "app", {{"password", "b-stays"}});
}

// A damaged backup is refused by bao-backup itself (exit 6) and never applied; with
// --verify-first OpenBao receives no restore request at all (its audit log shows none).
TEST_F(RealOpenBaoRestore, DamagedBackupNeverReachesOpenBao) {
  auto a = StartCluster({.nodes = 1});
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->Fill(2u << 20).ok());
  std::string key = BackupWithRoot(a.get());
  ASSERT_FALSE(key.empty());
  auto b = StartCluster({.nodes = 1, .audit = true});
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->PutSecret("app", {{"password", "b-stays"}}).ok());
  std::string id_b = ClusterId(b.get());

  std::string good = ReadText(ObjectPath(key));
  std::string dir = std::filesystem::path(ObjectPath(key)).parent_path();
  auto put = [&](const std::string& name, const std::string& bytes, const std::string& recorded) {
    WriteText(dir + "/" + name, bytes);
    WriteText(dir + "/" + name + ".sha256", crypto::Sha256Hex(recorded) + "  " + name + "\n");
    return "ns/bao/" + name;
  };
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x20);
  std::string truncated = good.substr(0, good.size() - 100);
  std::vector<std::pair<std::string, std::string>> damaged = {
      {"flipped byte under the good checksum",
       put("2020-01-01T00-00-00Z-0000000a.snap", flipped, good)},
      {"truncated", put("2020-01-01T00-00-00Z-0000000b.snap", truncated, truncated)},
      {"flipped byte with its own checksum",
       put("2020-01-01T00-00-00Z-0000000c.snap", flipped, flipped)},
  };
  for (const auto& [name, k] : damaged) {
    RunResult v = Cli({"verify", "--provider", "file", "--bucket", store_.path(), "--key", k});
    EXPECT_EQ(v.exit_code, 6) << name << "\n" << Describe(v);
    RunResult r = Restore({b->Url(0)}, b->root_token(), {"--key", k, "--force"});
    EXPECT_EQ(r.exit_code, 6) << name << "\n" << Describe(r);
    EXPECT_EQ(ClusterId(b.get()), id_b) << name;
    ExpectEveryNodeServes(b.get(), "app", {{"password", "b-stays"}});
  }
  int before = RestoreRequests(*b);
  for (const auto& [name, k] : damaged) {
    RunResult r = Restore({b->Url(0)}, b->root_token(), {"--key", k, "--force", "--verify-first"});
    EXPECT_EQ(r.exit_code, 6) << name << "\n" << Describe(r);
  }
  EXPECT_EQ(RestoreRequests(*b), before) << "--verify-first sent a damaged backup to OpenBao";
  // The audit log does see restore requests (so the check above can fail): a good one.
  RunResult ok = Restore({b->Url(0)}, b->root_token(), {"--key", key, "--force"});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_GT(RestoreRequests(*b), before);
}

TEST_F(RealOpenBaoRestore, RestoreNeedsConfirmationWhenNotOnATerminal) {
  auto c = StartCluster({.nodes = 1, .audit = true});
  ASSERT_TRUE(c);
  std::string key = BackupWithRoot(c.get());
  std::vector<std::string> args = {"restore", "--bao-addr", c->Url(0), "--key", key};
  std::vector<std::string> t = Target();
  args.insert(args.end(), t.begin(), t.end());
  RunResult r = Cli(args, {{"BAO_TOKEN", c->root_token()}});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.out.find("--yes"), std::string::npos) << r.out;
  EXPECT_EQ(RestoreRequests(*c), 0);
  RunResult confirmed = Restore({c->Url(0)}, c->root_token(), {"--key", key});
  EXPECT_EQ(confirmed.exit_code, 0) << Describe(confirmed);
  EXPECT_EQ(RestoreRequests(*c), 1) << "the audit check above could not fail";
}

// list, verify --before and prune on backups of a real cluster (bytes of one real backup stored
// under three known times, plus objects that are not this cluster's backups).
TEST_F(RealOpenBaoRestore, ListVerifyBeforeAndPrune) {
  auto c = StartCluster({.nodes = 1});
  ASSERT_TRUE(c);
  std::string key = BackupWithRoot(c.get());
  ASSERT_FALSE(key.empty());
  std::string good = ReadText(ObjectPath(key));
  std::filesystem::remove_all(store_.path() + "/ns");
  auto put = [&](const std::string& k, const std::string& bytes) {
    std::string path = ObjectPath(k);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    WriteText(path, bytes);
    WriteText(path + ".sha256", crypto::Sha256Hex(bytes) + "  " +
                                    std::filesystem::path(path).filename().string() + "\n");
  };
  for (const char* name :
       {"2026-01-01T03-00-00Z-00000001.snap", "2026-01-02T03-00-00Z-00000002.snap",
        "2026-01-03T03-00-00Z-00000003.snap"}) {
    put(std::string("ns/bao/") + name, good);
  }
  put("ns/bao/readme.txt", "not a backup");
  put("ns/other/2026-01-05T03-00-00Z-00000005.snap", good);
  auto tool = [&](std::vector<std::string> args) {
    std::vector<std::string> t = Target();
    args.insert(args.end(), t.begin(), t.end());
    return Cli(args);
  };

  RunResult list = tool({"list", "-o", "json"});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  json entries = json::parse(list.out);
  ASSERT_EQ(entries.size(), 3u) << list.out;
  EXPECT_EQ(entries[0]["key"], "ns/bao/2026-01-03T03-00-00Z-00000003.snap");
  EXPECT_EQ(entries[0]["sha256"], crypto::Sha256Hex(good));

  RunResult before = tool({"verify", "--before", "2026-01-03T03:00:00Z"});
  ASSERT_EQ(before.exit_code, 0) << Describe(before);
  EXPECT_EQ(LastJson(before)["key"], "ns/bao/2026-01-02T03-00-00Z-00000002.snap");
  RunResult none = tool({"verify", "--before", "2026-01-01T03:00:00Z"});
  EXPECT_EQ(none.exit_code, 1) << Describe(none);
  EXPECT_NE(none.out.find("older than 2026-01-01T03:00:00Z"), std::string::npos) << none.out;

  RunResult dry = tool({"prune", "--max-count", "1", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << Describe(dry);
  EXPECT_EQ(Files(store_.path()).size(), 10u);
  RunResult prune = tool({"prune", "--max-count", "1"});
  ASSERT_EQ(prune.exit_code, 0) << Describe(prune);
  EXPECT_EQ(LastJson(prune)["deleted"], 2);
  EXPECT_TRUE(std::filesystem::exists(ObjectPath("ns/bao/readme.txt")));
  EXPECT_TRUE(std::filesystem::exists(ObjectPath("ns/other/2026-01-05T03-00-00Z-00000005.snap")));

  // The newest one restores into the cluster it came from.
  RunResult restore = Restore({c->Url(0)}, c->root_token(), {"--latest"});
  EXPECT_EQ(restore.exit_code, 0) << Describe(restore);
  EXPECT_EQ(LastJson(restore)["restored"], "ns/bao/2026-01-03T03-00-00Z-00000003.snap");

  // A newer object whose checksum never got recorded (a commit cut short) does not count: the
  // last verifiable backup survives --max-count 1.
  WriteText(ObjectPath("ns/bao/2026-01-04T03-00-00Z-00000004.snap"), good);
  RunResult again = tool({"prune", "--max-count", "1"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_TRUE(std::filesystem::exists(ObjectPath("ns/bao/2026-01-03T03-00-00Z-00000003.snap")));
  EXPECT_TRUE(std::filesystem::exists(ObjectPath("ns/bao/2026-01-04T03-00-00Z-00000004.snap")));
  // restore --latest takes the newest backup it can verify, not that object.
  RunResult latest = Restore({c->Url(0)}, c->root_token(), {"--latest"});
  EXPECT_EQ(latest.exit_code, 0) << Describe(latest);
  EXPECT_EQ(LastJson(latest)["restored"], "ns/bao/2026-01-03T03-00-00Z-00000003.snap");
  EXPECT_NE(latest.err.find("skipping a backup without a recorded checksum"), std::string::npos);
}

// An HTTP proxy in front of a real cluster that answers reads from the active node until a
// restore POST arrives, sends that POST to a standby, and from then on sends everything to
// that standby: bao-backup sees "the active node" that turns out to have been a standby when
// the snapshot arrived.
class SwitchingProxy {
 public:
  SwitchingProxy(std::string active, std::string standby)
      : active_(std::move(active)), standby_(std::move(standby)) {
    auto forward = [this](const httplib::Request& req, httplib::Response& res) {
      const std::string& to = switched_ ? standby_ : active_;
      httplib::Client cli(to);
      cli.set_read_timeout(std::chrono::seconds(30));
      httplib::Headers headers;
      for (const char* h : {"X-Vault-Token", "Content-Type", "X-Vault-Request"}) {
        if (req.has_header(h)) headers.emplace(h, req.get_header_value(h));
      }
      httplib::Result r = req.method == "GET" ? cli.Get(req.target, headers)
                                              : cli.Post(req.target, headers, req.body,
                                                         req.get_header_value("Content-Type"));
      if (!r) {
        res.status = 502;
        return;
      }
      res.status = r->status;
      res.set_content(r->body, r->get_header_value("Content-Type"));
    };
    server_.Get(".*", forward);
    server_.Post(".*", [this, forward](const httplib::Request& req, httplib::Response& res) {
      switched_ = true;
      forward(req, res);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~SwitchingProxy() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string active_, standby_;
  std::atomic<bool> switched_{false};
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(RealOpenBaoRestore, RestoreSentToStandby) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->PutSecret("app", {{"password", "current"}}).ok());
  std::string key = BackupWithRoot(c.get());
  ASSERT_FALSE(key.empty());
  int active = c->ActiveNode();
  int standby = (active + 1) % c->size();
  SwitchingProxy proxy(c->Url(active), c->Url(standby));

  RunResult r = Restore({proxy.url(), c->Url(active)}, c->root_token(),
                        {"--key", key, "--settle-timeout", "30s"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  std::string error = LastJson(r).value("error", "");
  EXPECT_NE(error.find("the restore reached a standby; nothing was restored"), std::string::npos)
      << error;
  // The real standby did seal itself, and the active node kept its data.
  Result<BaoReply> h = c->Call(standby, "GET", "sys/health", nullptr, "");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->body.value("sealed", false)) << h->Describe();
  Result<json> kept = c->GetSecret(active, "app");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(*kept, json({{"password", "current"}}));
}

}  // namespace
}  // namespace bao::testing
