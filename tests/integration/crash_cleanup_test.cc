// Issue 15, "Leftovers after a crash": the real `bao-backup backup` is killed with SIGKILL at
// several points of its upload, on every provider; the next backup with
// --cleanup-older-than 0s removes exactly this cluster's leftovers, and its own backup
// verifies. Storage-side points are held with HttpFaultProxy stall rules, source-side ones with
// the OpenBao test server's stall_after_bytes fault.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backup/verify.h"
#include "cli_fixture.h"
#include "common/numbers.h"
#include "storage/store.h"
#include "storage/target.h"
#include "support/azurite.h"
#include "support/fake_gcs.h"
#include "support/fault_proxy.h"
#include "support/minio.h"

namespace bao::testing {
namespace {

using Rule = HttpFaultProxy::Rule;
using Where = HttpFaultProxy::Where;

constexpr uint64_t kPart = 5 << 20;
constexpr const char* kPrefix = "ns/bao/";
constexpr const char* kAzureBlock = "comp=block&blockid";
// Steps of each provider's property test (CheckTheNewestVerifiableBackupSurvives).
constexpr int kPropertySteps = 40;

int PortOf(const std::string& url) {
  size_t colon = url.rfind(':');
  return std::stoi(url.substr(colon + 1));
}

// Of the names of a raw listing (checksum side objects included), the side objects whose
// object is not listed.
std::vector<std::string> OrphanChecksums(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& n : names) {
    if (n.ends_with(".sha256") &&
        std::find(names.begin(), names.end(), n.substr(0, n.size() - 7)) == names.end()) {
      out.push_back(n);
    }
  }
  return out;
}

// Forwards the matching request untouched (a stall that never starts): lets the first `n`
// matching requests through before the next rule matches.
Rule PassThrough(std::string method, std::string path, int n) {
  Rule r = HttpFaultProxy::StallAfter(UINT64_MAX, Where::kResponse);
  r.On(std::move(method), std::move(path)).Times(n);
  return r;
}

Rule Stall(std::string method, std::string path, uint64_t bytes, Where where) {
  Rule r = HttpFaultProxy::StallAfter(bytes, where);
  r.On(std::move(method), std::move(path)).Times(-1);
  return r;
}

// One kill point: the proxy rules that hold the process there (or a source stall), and the
// condition that says it got there.
struct KillPoint {
  std::string name;
  std::vector<Rule> rules;
  uint64_t source_stall_after = 0;  // 0 = none
  // Reached when this holds (proxy log, files): then SIGKILL.
  std::function<bool()> reached;
  bool leaves_leftover = true;  // the provider holds something for cleanup afterwards
  // A command run in front of bao-backup that kills it by itself (strace injecting SIGKILL at
  // a chosen system call): then the point is reached when the process has ended.
  std::vector<std::string> killer;
};

// strace in front of bao-backup: at the `nth` call of `syscall` (counted per thread), the call
// is not made (it fails with EIO) and the process gets SIGKILL, as a kill -9 at that instant.
std::vector<std::string> KillAtSyscall(const std::string& syscall, int nth) {
  return {"strace",
          "-f",
          "-qq",
          "-o",
          "/dev/null",
          "-e",
          "inject=" + syscall + ":error=EIO:signal=KILL:when=" + std::to_string(nth)};
}

class CrashCleanupTest : public CliTest {
 protected:
  void StartSource() {
    BaoTestServerOptions options;
    options.state_size = 12 << 20;  // three parts of 5 MiB
    server_ = std::make_unique<BaoTestServer>(options);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // The store flags for an endpoint (the proxy's or the peer's own).
  virtual std::vector<std::string> StoreArgs(const std::string& endpoint) = 0;
  virtual std::map<std::string, std::string> StoreEnv() { return {}; }
  // Names of this cluster's provider-side leftovers, read with an independent client.
  virtual std::vector<std::string> Leftovers() = 0;
  virtual storage::TargetConfig Target() = 0;
  // Every kill point of this provider, for backups through `proxy` (the file store's need none).
  virtual std::vector<KillPoint> Points(HttpFaultProxy& proxy) = 0;
  // The port a proxy in front of the store forwards to, and the store's own endpoint.
  virtual int StorePort() = 0;
  virtual std::string Direct() = 0;
  // Replaces the bytes of `key` behind bao-backup's back (bit rot, tampering), keeping the
  // checksum recorded for it.
  virtual void Damage(const std::string& key) = 0;

  std::vector<std::string> BackupArgs(const std::string& endpoint) {
    std::vector<std::string> args = {
        "backup", "--bao-addr",  server_->Url(0),       "--namespace",   "ns", "--cluster",
        "bao",    "--part-size", std::to_string(kPart), "--concurrency", "1",  "--leader-wait",
        "5s"};
    std::vector<std::string> store = StoreArgs(endpoint);
    args.insert(args.end(), store.begin(), store.end());
    return args;
  }
  std::map<std::string, std::string> Env() {
    std::map<std::string, std::string> env = StoreEnv();
    env["BAO_TOKEN"] = server_->admin_token();
    env["BAO_ADDR"] = "";
    return env;
  }

  // The objects under the prefix, as the store lists them.
  std::vector<std::string> Objects() {
    std::vector<std::string> keys;
    Result<std::unique_ptr<storage::Store>> store = storage::OpenStore(Target());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return keys;
    Status s = (*store)->List(Context(), kPrefix, [&](const storage::ObjectInfo& info) {
      keys.push_back(info.key);
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok() || s.code() == Code::kNotFound) << s.ToString();
    return keys;
  }

  // Every backup object under the prefix has its checksum.
  void ExpectNoObjectWithoutChecksum(const std::string& when) {
    Result<std::unique_ptr<storage::Store>> store = storage::OpenStore(Target());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Status s = (*store)->List(Context(), kPrefix, [&](const storage::ObjectInfo& info) {
      if (!info.key.ends_with(".snap")) return Status::Ok();  // an unrelated object
      Result<storage::ObjectInfo> st = (*store)->Stat(Context(), info.key);
      EXPECT_TRUE(st.ok()) << st.status().ToString();
      if (st.ok()) {
        EXPECT_FALSE(st->sha256.empty()) << when << ": " << info.key << " has no checksum";
      }
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok() || s.code() == Code::kNotFound) << s.ToString();
  }

  // Runs a backup through `proxy` that is killed at `point`, then one that cleans up.
  // Runs a backup through `proxy` (nullptr: straight to `direct`) that is killed at `point`.
  void Kill(HttpFaultProxy* proxy, const std::string& direct, const KillPoint& point) {
    if (proxy != nullptr) {
      proxy->ClearRules();
      log_start_ = proxy->log().size();
      rule_ids_.clear();
      for (const Rule& r : point.rules) rule_ids_.push_back(proxy->AddRule(r));
    }
    if (point.source_stall_after > 0) {
      ASSERT_TRUE(server_->SetFaults({{"stall_after_bytes", point.source_stall_after}}).ok());
    }
    std::vector<std::string> argv = BackupArgs(proxy != nullptr ? ProxyEndpoint(*proxy) : direct);
    argv.insert(argv.begin(), BuildBinary("bao-backup"));
    argv.insert(argv.begin(), point.killer.begin(), point.killer.end());
    Process victim;
    std::string error;
    ASSERT_TRUE(victim.Start(argv, Env(), &error)) << error;
    bool reached = point.killer.empty()
                       ? WaitUntil(point.reached, std::chrono::seconds(60))
                       : WaitUntil([&] { return !victim.Running(); }, std::chrono::seconds(60));
    victim.Signal(SIGKILL);
    int status = victim.Wait(std::chrono::seconds(10));
    ASSERT_TRUE(reached) << "the backup never reached the kill point\nstderr:\n" << victim.Stderr();
    EXPECT_EQ(status, 128 + SIGKILL) << victim.Stderr();
    if (proxy != nullptr) proxy->ClearRules();
    ASSERT_TRUE(server_->ClearFaults().ok());

    ExpectNoObjectWithoutChecksum("after the kill");
  }

  // Kill(), then a backup that removes the leftovers and verifies.
  void KillAndRecover(HttpFaultProxy* proxy, const std::string& direct, const KillPoint& point) {
    SCOPED_TRACE(point.name);
    auto started = std::chrono::steady_clock::now();
    Kill(proxy, direct, point);
    if (HasFatalFailure()) return;
    if (point.leaves_leftover) {
      EXPECT_FALSE(Leftovers().empty()) << "the kill left nothing to clean up";
    }

    // A threshold that excludes the fresh leftovers removes nothing (a backup of its own still
    // runs: it is not a leftover).
    RunResult kept = Cli(BackupArgs(direct), Env());
    ASSERT_EQ(kept.exit_code, 0) << Describe(kept);
    EXPECT_EQ(LastJson(kept)["cleanedUp"], 0) << kept.out;
    if (point.leaves_leftover) {
      EXPECT_FALSE(Leftovers().empty());
    }

    std::vector<std::string> before = Objects();
    std::vector<std::string> args = BackupArgs(direct);
    args.insert(args.end(), {"--cleanup-older-than", "0s"});
    RunResult r = Cli(args, Env());
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    nlohmann::json out = LastJson(r);
    // Every committed object is still there; the one new is this run's backup.
    before.push_back(out["key"].get<std::string>());
    std::sort(before.begin(), before.end());
    EXPECT_EQ(Objects(), before);
    if (point.leaves_leftover) {
      EXPECT_GE(out["cleanedUp"].get<int>(), 1) << r.out;
    }
    EXPECT_FALSE(out.contains("cleanupError")) << r.out;
    EXPECT_EQ(Leftovers(), std::vector<std::string>{});
    ExpectNoObjectWithoutChecksum("after the cleanup");

    std::vector<std::string> verify = {"verify", "--key", out["key"].get<std::string>()};
    std::vector<std::string> store = StoreArgs(direct);
    verify.insert(verify.end(), store.begin(), store.end());
    RunResult v = Cli(verify, StoreEnv());
    EXPECT_EQ(v.exit_code, 0) << Describe(v);
    std::printf("[ kill point ] %s: %.1f s\n", point.name.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }

  virtual std::string ProxyEndpoint(const HttpFaultProxy& proxy) { return proxy.url(); }

  // True once the proxy saw a request matching method/path answered with `status` (0 = any
  // request head seen).
  // Only this kill point's requests count.
  bool Saw(const HttpFaultProxy& proxy, const std::string& method, const std::string& path,
           int status = 0) const {
    std::vector<HttpFaultProxy::Exchange> log = proxy.log();
    for (size_t i = log_start_; i < log.size(); ++i) {
      const HttpFaultProxy::Exchange& e = log[i];
      if (e.method == method && e.target.find(path) != std::string::npos &&
          (status == 0 || e.status == status)) {
        return true;
      }
    }
    return false;
  }

  // Requests of this kill point.
  std::vector<HttpFaultProxy::Exchange> Log(const HttpFaultProxy& proxy) const {
    std::vector<HttpFaultProxy::Exchange> log = proxy.log();
    log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(log_start_));
    return log;
  }
  // True once the last rule of this kill point took effect: for a response stall, the peer
  // answered (the step is done on its side) and the client never sees it.
  bool Fired(const HttpFaultProxy& proxy) const {
    return !rule_ids_.empty() && proxy.fired(rule_ids_.back()) > 0;
  }

  // The newest backup under the prefix whose bytes match its recorded checksum and form a
  // snapshot archive ("" when none does), read with the project's own Store and verifier.
  std::string NewestVerifiable() {
    std::vector<std::string> keys = Objects();
    std::sort(keys.rbegin(), keys.rend());  // key names start with their time: newest first
    for (const std::string& key : keys) {
      if (key.ends_with(".snap") && Verifies(key)) return key;
    }
    return "";
  }
  bool Verifies(const std::string& key) {
    Result<std::unique_ptr<storage::Store>> store = storage::OpenStore(Target());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() && backup::VerifyBackup(Context(), store->get(), key).ok();
  }

  // Issue 15's invariant as a property: through any sequence of backups, kills at any point
  // of an upload (every step of the commit included), damage to stored bytes and prunes with
  // random retention and cleanup settings, the newest backup that verifies is never lost, and
  // a final cleanup leaves no leftover. The sequence comes from a seed, printed;
  // BAO_PROPERTY_SEED=N replays one.
  void CheckTheNewestVerifiableBackupSurvives(int steps) {
    uint64_t seed = 20261130;
    if (const char* env = std::getenv("BAO_PROPERTY_SEED"); env != nullptr && *env != '\0') {
      std::optional<uint64_t> parsed = ParseInteger<uint64_t>(env, 0, UINT64_MAX);
      ASSERT_TRUE(parsed.has_value()) << "BAO_PROPERTY_SEED is not a number: " << env;
      seed = *parsed;
    }
    std::printf("[ property ] seed %llu (BAO_PROPERTY_SEED replays it)\n",
                static_cast<unsigned long long>(seed));
    std::mt19937_64 rng(seed);
    HttpFaultProxy proxy(StorePort());
    ASSERT_NE(proxy.port(), 0);
    const bool proxied = !Direct().empty();
    const std::vector<KillPoint> points = Points(proxy);
    std::string history;
    // prune --max-count `count`, optionally removing every leftover; returns what it deleted.
    auto prune = [&](int count, bool cleanup_all) -> std::string {
      std::vector<std::string> args = {
          "prune", "--namespace", "ns", "--cluster", "bao", "--max-count", std::to_string(count)};
      std::vector<std::string> store = StoreArgs(Direct());
      args.insert(args.end(), store.begin(), store.end());
      if (cleanup_all) args.insert(args.end(), {"--cleanup-older-than", "0s"});
      RunResult r = Cli(args, Env());
      EXPECT_EQ(r.exit_code, 0) << Describe(r) << history;
      return "prune --max-count " + std::to_string(count) +
             (cleanup_all ? " --cleanup-older-than 0s" : "") + ": deleted " +
             LastJson(r)["deleted"].dump();
    };
    for (int step = 0; step < steps; ++step) {
      const std::string good = NewestVerifiable();
      std::string expected = good;  // that backup, or a newer one, must verify after this step
      std::string what;
      switch (rng() % 10) {
        case 0:
        case 1:
        case 2: {
          std::vector<std::string> args = BackupArgs(Direct());
          if (rng() % 2 == 0) args.insert(args.end(), {"--cleanup-older-than", "0s"});
          RunResult r = Cli(args, Env());
          ASSERT_EQ(r.exit_code, 0) << Describe(r) << history;
          what = "backup " + LastJson(r)["key"].get<std::string>();
          expected = LastJson(r)["key"].get<std::string>();
          break;
        }
        case 3:
        case 4:
        case 5: {
          const KillPoint& point = points[rng() % points.size()];
          what = "killed: " + point.name;
          Kill(proxied ? &proxy : nullptr, Direct(), point);
          ASSERT_FALSE(HasFatalFailure()) << history << what;
          break;
        }
        case 6:
          // The newest good backup is damaged, and retention keeping one meets it at once.
          if (good.empty()) continue;
          Damage(good);
          expected = NewestVerifiable();
          EXPECT_NE(expected, good) << "the damage went unnoticed";
          what = "damaged " + good + ", then " + prune(1, false);
          break;
        default: what = prune(1 + static_cast<int>(rng() % 3), rng() % 2 == 0); break;
      }
      history += "  " + std::to_string(step) + ": " + what + "\n";
      std::printf("[ property ] %d: %s\n", step, what.c_str());
      // That backup, or a newer one that verifies: a request in flight when the process was
      // killed may still complete a backup on the server afterwards.
      if (!expected.empty()) {
        const std::string now = NewestVerifiable();
        EXPECT_GE(now, expected) << expected
                                 << ", the newest backup that verified, was lost; steps:\n"
                                 << history;
      }
    }
    // A prune keeping one and removing every leftover: the newest good backup stays.
    const std::string good = NewestVerifiable();
    const std::string what = prune(1, true);
    EXPECT_GE(NewestVerifiable(), good) << good << " was lost by the final " << what << "\n"
                                        << history;
    EXPECT_EQ(Leftovers(), std::vector<std::string>{}) << history;
  }

  std::unique_ptr<BaoTestServer> server_;
  TempDir creds_;
  size_t log_start_ = 0;
  std::vector<int> rule_ids_;
};

// --- S3 (MinIO) ---

class S3CrashTest : public CrashCleanupTest {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(minio_.Start(&error)) << error;
    ASSERT_TRUE(minio_.CreateBucket("backups", &error)) << error;
    WriteText(creds_.File("accessKeyId"), minio_.access_key() + "\n");
    WriteText(creds_.File("secretAccessKey"), minio_.secret_key() + "\n");
    StartSource();
  }
  std::vector<std::string> StoreArgs(const std::string& endpoint) override {
    return {"--provider", "s3",      "--endpoint",        endpoint,     "--use-path-style",
            "--bucket",   "backups", "--credentials-dir", creds_.path()};
  }
  std::map<std::string, std::string> StoreEnv() override {
    return {{"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", ""}};
  }
  storage::TargetConfig Target() override {
    storage::TargetConfig t;
    t.provider = "s3";
    t.endpoint = minio_.endpoint();
    t.bucket = "backups";
    t.use_path_style = true;
    t.credentials_dir = creds_.path();
    return t;
  }
  std::vector<std::string> Uploads(const std::string& prefix) {
    // Without --prefix: MinIO lists with a prefix only the uploads of exactly that key.
    RunResult r =
        minio_.Aws({"s3api", "list-multipart-uploads", "--bucket", "backups", "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> keys;
    nlohmann::json j = nlohmann::json::parse(r.out.empty() ? "{}" : r.out, nullptr, false);
    if (j.is_object() && j.contains("Uploads")) {
      for (const auto& u : j["Uploads"]) {
        std::string key = u["Key"].get<std::string>();
        if (key.starts_with(prefix)) keys.push_back(key);
      }
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  // Unfinished uploads and orphan checksum side objects.
  std::vector<std::string> Leftovers() override {
    std::vector<std::string> out = Uploads(kPrefix);
    RunResult r = minio_.Aws({"s3api", "list-objects-v2", "--bucket", "backups", "--prefix",
                              kPrefix, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out.empty() ? "{}" : r.out, nullptr, false);
    std::vector<std::string> names;
    if (j.is_object() && j.contains("Contents")) {
      for (const auto& o : j["Contents"]) names.push_back(o["Key"].get<std::string>());
    }
    for (const std::string& o : OrphanChecksums(names)) out.push_back(o);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<KillPoint> Points(HttpFaultProxy& proxy) override;
  int StorePort() override { return minio_.port(); }
  std::string Direct() override { return minio_.endpoint(); }
  void Damage(const std::string& key) override {
    WriteText(creds_.File("damage"), "not what was recorded");
    RunResult r = minio_.Aws({"s3", "cp", creds_.File("damage"), "s3://backups/" + key});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void RunPoints(size_t first, size_t last);

  MinioServer minio_;
};

std::vector<KillPoint> S3CrashTest::Points(HttpFaultProxy& proxy) {
  std::vector<KillPoint> points;
  points.push_back({"upload started, no part sent",
                    {Stall("PUT", "partNumber=1", 0, Where::kRequestBody)},
                    0,
                    [&] { return Saw(proxy, "PUT", "partNumber=1"); }});
  points.push_back(
      {"mid-parts", {Stall("PUT", "partNumber=2", 1 << 20, Where::kRequestBody)}, 0, [&] {
         return Saw(proxy, "PUT", "partNumber=2");
       }});
  points.push_back({"source stalled after 7 MiB", {}, 7 << 20, [&] {
                      return Saw(proxy, "PUT", "partNumber=1", 200);
                    }});
  points.push_back({"all parts sent, before the commit",
                    {Stall("POST", "uploadId=", 0, Where::kRequestBody)},
                    0,
                    [&] { return Saw(proxy, "POST", "uploadId="); }});
  points.push_back({"during the commit (answer held)",
                    {Stall("POST", "uploadId=", 0, Where::kResponse)},
                    0,
                    [&] { return Fired(proxy); },
                    /*leaves_leftover=*/false});
  return points;
}

void S3CrashTest::RunPoints(size_t first, size_t last) {
  HttpFaultProxy proxy(minio_.port());
  ASSERT_NE(proxy.port(), 0);
  // Another cluster's unfinished upload and an unrelated object: never touched.
  RunResult other = minio_.Aws(
      {"s3api", "create-multipart-upload", "--bucket", "backups", "--key", "ns/other/x.snap"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  WriteText(creds_.File("note"), "unrelated");
  ASSERT_EQ(
      minio_.Aws({"s3", "cp", creds_.File("note"), "s3://backups/ns/bao/notes.txt"}).exit_code, 0);

  std::vector<KillPoint> points = Points(proxy);
  for (size_t i = first; i < last && i < points.size(); ++i) {
    KillAndRecover(&proxy, minio_.endpoint(), points[i]);
  }

  EXPECT_EQ(Uploads("ns/other/"), std::vector<std::string>{"ns/other/x.snap"});
  RunResult head =
      minio_.Aws({"s3api", "head-object", "--bucket", "backups", "--key", "ns/bao/notes.txt"});
  EXPECT_EQ(head.exit_code, 0) << head.err;
}

// Kill points 1..4: upload started (no part), mid-parts, stalled source, all parts sent before
// CompleteMultipartUpload.
TEST_F(S3CrashTest, KilledBeforeTheCommitThenCleanedUp) {
  RunPoints(0, 4);
}

// Kill points 5..5: CompleteMultipartUpload done on the server, its answer never seen.
TEST_F(S3CrashTest, KilledDuringTheCommitThenCleanedUp) {
  RunPoints(4, 5);
}

TEST_F(S3CrashTest, TheNewestVerifiableBackupSurvivesAnySequence) {
  CheckTheNewestVerifiableBackupSurvives(kPropertySteps);
}

// --- Azure (Azurite) ---

class AzureCrashTest : public CrashCleanupTest {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(azurite_.Start(&error)) << error;
    RunResult r = azurite_.Check({"create", "backups"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    WriteText(creds_.File("accountKey"), std::string(kAzuriteKey) + "\n");
    StartSource();
  }
  std::vector<std::string> StoreArgs(const std::string& endpoint) override {
    return {"--provider",        "azure",         "--endpoint", endpoint,
            "--storage-account", kAzuriteAccount, "--bucket",   "backups",
            "--credentials-dir", creds_.path()};
  }
  std::string ProxyEndpoint(const HttpFaultProxy& proxy) override {
    return proxy.url() + "/" + kAzuriteAccount;
  }
  storage::TargetConfig Target() override {
    storage::TargetConfig t;
    t.provider = "azure";
    t.endpoint = azurite_.endpoint();
    t.bucket = "backups";
    t.azure_storage_account = kAzuriteAccount;
    t.credentials_dir = creds_.path();
    return t;
  }
  std::vector<std::string> Uncommitted(const std::string& prefix) {
    RunResult r = azurite_.Check({"uncommitted", "backups", prefix});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(LastLine(r.out), nullptr, false);
    std::vector<std::string> names;
    if (j.is_array()) {
      for (const auto& n : j) names.push_back(n.get<std::string>());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  std::vector<std::string> Leftovers() override { return Uncommitted(kPrefix); }

  std::vector<KillPoint> Points(HttpFaultProxy& proxy) override;
  int StorePort() override {
    return PortOf(azurite_.endpoint().substr(0, azurite_.endpoint().rfind('/')));
  }
  std::string Direct() override { return azurite_.endpoint(); }
  void Damage(const std::string& key) override {
    RunResult r = azurite_.Check({"overwrite", "backups", key});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void RunPoints(size_t first, size_t last);

  Azurite azurite_;
};

std::vector<KillPoint> AzureCrashTest::Points(HttpFaultProxy& proxy) {
  std::vector<KillPoint> points;
  points.push_back({"upload started, no block sent",
                    {Stall("PUT", kAzureBlock, 0, Where::kRequestBody)},
                    0,
                    [&] { return Saw(proxy, "PUT", kAzureBlock); },
                    /*leaves_leftover=*/false});
  points.push_back({"mid-blocks",
                    {PassThrough("PUT", kAzureBlock, 1),
                     Stall("PUT", kAzureBlock, 1 << 20, Where::kRequestBody)},
                    0,
                    [&] { return Saw(proxy, "PUT", kAzureBlock, 201) && Log(proxy).size() >= 2; }});
  points.push_back({"source stalled after 7 MiB", {}, 7 << 20, [&] {
                      return Saw(proxy, "PUT", kAzureBlock, 201);
                    }});
  points.push_back({"all blocks sent, before the commit",
                    {Stall("PUT", "comp=blocklist", 0, Where::kRequestBody)},
                    0,
                    [&] { return Saw(proxy, "PUT", "comp=blocklist"); }});
  points.push_back({"during the commit (answer held)",
                    {Stall("PUT", "comp=blocklist", 0, Where::kResponse)},
                    0,
                    [&] { return Fired(proxy); },
                    /*leaves_leftover=*/false});
  return points;
}

void AzureCrashTest::RunPoints(size_t first, size_t last) {
  HttpFaultProxy proxy(PortOf(azurite_.endpoint().substr(0, azurite_.endpoint().rfind('/'))));
  ASSERT_NE(proxy.port(), 0);
  // Another cluster's crashed upload: never touched.
  RunResult staged = azurite_.Check({"stage", "backups", "ns/other/x.snap"});
  ASSERT_EQ(staged.exit_code, 0) << staged.err;
  ASSERT_EQ(Uncommitted("ns/other/"), std::vector<std::string>{"ns/other/x.snap"});
  std::vector<KillPoint> points = Points(proxy);
  for (size_t i = first; i < last && i < points.size(); ++i) {
    KillAndRecover(&proxy, azurite_.endpoint(), points[i]);
  }
  EXPECT_EQ(Uncommitted("ns/other/"), std::vector<std::string>{"ns/other/x.snap"});
}

// Kill points 1..4: first block held, mid-blocks, stalled source, all blocks sent before Put Block
// List.
TEST_F(AzureCrashTest, KilledBeforeTheCommitThenCleanedUp) {
  RunPoints(0, 4);
}

// Kill points 5..5: Put Block List done on the server, its answer never seen.
TEST_F(AzureCrashTest, KilledDuringTheCommitThenCleanedUp) {
  RunPoints(4, 5);
}

TEST_F(AzureCrashTest, TheNewestVerifiableBackupSurvivesAnySequence) {
  CheckTheNewestVerifiableBackupSurvives(kPropertySteps);
}

// A discard of uncommitted blocks (an aborted upload's, or a cleanup's) commits an empty blob
// marked abandoned, then deletes it; killed in between, it leaves that blob. It is no backup:
// the store does not list it, and the next cleanup deletes it.
TEST_F(AzureCrashTest, AnEmptyBlobLeftByAnInterruptedDiscardIsNoBackupAndIsCleanedUp) {
  const std::string key = std::string(kPrefix) + "2026-11-30T00-00-00Z-0badc0de.snap";
  RunResult made = azurite_.Check({"abandon", "backups", key});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ASSERT_EQ(azurite_.Check({"list", "backups", kPrefix}).out.find(key) == std::string::npos, false);
  EXPECT_EQ(Objects(), std::vector<std::string>{});

  std::vector<std::string> args = BackupArgs(azurite_.endpoint());
  args.insert(args.end(), {"--cleanup-older-than", "0s"});
  RunResult r = Cli(args, Env());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json out = LastJson(r);
  EXPECT_EQ(out["cleanedUp"], 1) << r.out;
  EXPECT_EQ(azurite_.Check({"list", "backups", kPrefix}).out.find(key), std::string::npos);
  EXPECT_EQ(Objects(), std::vector<std::string>{out["key"].get<std::string>()});
}

// --- GCS (fake-gcs-server) ---

class GcsCrashTest : public CrashCleanupTest {
 protected:
  void SetUp() override {
    unsetenv("STORAGE_EMULATOR_HOST");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    std::string error;
    ASSERT_TRUE(gcs_.Start(&error)) << error;
    ASSERT_TRUE(gcs_.CreateBucket("backups", &error)) << error;
    StartSource();
  }
  std::vector<std::string> StoreArgs(const std::string& endpoint) override {
    return {"--provider", "gcs", "--endpoint", endpoint, "--bucket", "backups"};
  }
  storage::TargetConfig Target() override {
    storage::TargetConfig t;
    t.provider = "gcs";
    t.endpoint = gcs_.url();
    t.bucket = "backups";
    return t;
  }
  // Every name under `prefix`, read with plain HTTP (the store's List() hides side objects and
  // session markers).
  std::vector<std::string> Names(const std::string& prefix) {
    RunResult r = ::bao::testing::Run(
        {"curl", "-sf", gcs_.url() + "/storage/v1/b/backups/o?prefix=" + prefix});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    std::vector<std::string> names;
    if (j.is_object() && j.contains("items")) {
      for (const auto& item : j["items"]) names.push_back(item["name"].get<std::string>());
    }
    return names;
  }
  std::vector<std::string> Markers(const std::string& prefix) {
    std::vector<std::string> markers;
    for (const std::string& n : Names(prefix)) {
      if (n.ends_with(".bao-upload-session")) markers.push_back(n);
    }
    std::sort(markers.begin(), markers.end());
    return markers;
  }
  // Session markers and orphan checksum side objects.
  std::vector<std::string> Leftovers() override {
    std::vector<std::string> out = Markers(kPrefix);
    for (const std::string& o : OrphanChecksums(Names(kPrefix))) out.push_back(o);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<KillPoint> Points(HttpFaultProxy& proxy) override;
  int StorePort() override { return gcs_.port(); }
  std::string Direct() override { return gcs_.url(); }
  void Damage(const std::string& key) override {
    WriteText(creds_.File("damage"), "not what was recorded");
    RunResult r = ::bao::testing::Run(
        {"curl", "-sf", "-X", "POST", "--data-binary", "@" + creds_.File("damage"),
         gcs_.url() + "/upload/storage/v1/b/backups/o?uploadType=media&name=" + key});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void RunPoints(size_t first, size_t last);

  FakeGcsServer gcs_;
};

std::vector<KillPoint> GcsCrashTest::Points(HttpFaultProxy& proxy) {
  std::vector<KillPoint> points;
  points.push_back({"session started, no chunk sent",
                    {Stall("PUT", "/upload/", 0, Where::kRequestBody)},
                    0,
                    [&] { return Saw(proxy, "PUT", "/upload/"); }});
  points.push_back(
      {"mid-chunks",
       {PassThrough("PUT", "/upload/", 1), Stall("PUT", "/upload/", 1 << 20, Where::kRequestBody)},
       0,
       [&] { return Saw(proxy, "PUT", "/upload/", 308) && Log(proxy).size() >= 4; }});
  points.push_back({"source stalled after 7 MiB", {}, 7 << 20, [&] {
                      return Saw(proxy, "PUT", "/upload/", 308);
                    }});
  points.push_back(
      {"all chunks but the final one sent",
       {PassThrough("PUT", "/upload/", 2), Stall("PUT", "/upload/", 0, Where::kRequestBody)},
       0,
       [&] {
         int puts = 0;
         for (const auto& e : Log(proxy)) puts += e.method == "PUT" ? 1 : 0;
         return puts >= 3;
       }});
  points.push_back(
      {"during the commit (final answer held)",
       {PassThrough("PUT", "/upload/", 2), Stall("PUT", "/upload/", 0, Where::kResponse)},
       0,
       [&] { return Fired(proxy); }});
  return points;
}

void GcsCrashTest::RunPoints(size_t first, size_t last) {
  HttpFaultProxy proxy(gcs_.port());
  ASSERT_NE(proxy.port(), 0);
  // 12 MiB in 5 MiB chunks: three PUTs to the session, the third one final.
  std::vector<KillPoint> points = Points(proxy);
  // Another cluster's leftover: a marker this run must not remove.
  WriteText(creds_.File("marker"), "http://127.0.0.1:1/upload/none");
  RunResult planted = ::bao::testing::Run(
      {"curl", "-sf", "-X", "POST", "--data-binary", "@" + creds_.File("marker"),
       gcs_.url() + "/upload/storage/v1/b/backups/o?uploadType=media&name="
                    "ns/other/x.snap.bao-upload-session"});
  ASSERT_EQ(planted.exit_code, 0) << planted.err;
  for (size_t i = first; i < last && i < points.size(); ++i) {
    KillAndRecover(&proxy, gcs_.url(), points[i]);
  }
  EXPECT_EQ(Markers("ns/other/"), std::vector<std::string>{"ns/other/x.snap.bao-upload-session"});
}

// Kill points 1..3: session started (no chunk), mid-chunks, stalled source.
TEST_F(GcsCrashTest, KilledBeforeTheCommitThenCleanedUp) {
  RunPoints(0, 3);
}

// Kill points 4..5: the final chunk (which finalizes the object) sent; then its answer held.
TEST_F(GcsCrashTest, KilledDuringTheCommitThenCleanedUp) {
  RunPoints(3, 5);
}

TEST_F(GcsCrashTest, TheNewestVerifiableBackupSurvivesAnySequence) {
  CheckTheNewestVerifiableBackupSurvives(kPropertySteps);
}

// --- file ---

class FileCrashTest : public CrashCleanupTest {
 protected:
  void SetUp() override { StartSource(); }
  std::vector<std::string> StoreArgs(const std::string&) override {
    return {"--provider", "file", "--bucket", root_.path()};
  }
  storage::TargetConfig Target() override {
    storage::TargetConfig t;
    t.provider = "file";
    t.bucket = root_.path();
    return t;
  }
  std::vector<std::string> Temporaries(const std::string& dir) {
    std::vector<std::string> out;
    for (const std::string& f : Files(root_.path())) {
      std::string name = f.substr(f.rfind('/') + 1);
      if (f.starts_with(dir) && name.starts_with(".")) out.push_back(f);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Temporary files, and checksum files whose object does not exist.
  std::vector<std::string> Leftovers() override {
    std::vector<std::string> out = Temporaries(kPrefix);
    for (const std::string& f : Files(root_.path())) {
      if (f.starts_with(kPrefix) && f.ends_with(".sha256") &&
          !std::filesystem::exists(root_.path() + "/" + f.substr(0, f.size() - 7))) {
        out.push_back(f);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Bytes in this cluster's partial files.
  uint64_t PartialBytes() {
    uint64_t n = 0;
    for (const std::string& f : Temporaries(kPrefix)) {
      std::error_code ec;
      uint64_t size = std::filesystem::file_size(root_.path() + "/" + f, ec);
      if (!ec) n += size;
    }
    return n;
  }

  std::vector<KillPoint> MidUploadPoints() {
    std::vector<KillPoint> points;
    for (uint64_t at : {uint64_t{1}, uint64_t{3} << 20, uint64_t{9} << 20}) {
      points.push_back(
          {"source stalled after " + std::to_string(at) + " bytes", {}, at, [this, at] {
             // Written in 1 MiB blocks: all but the last two MiB are on disk.
             uint64_t on_disk = at > (2 << 20) ? at - (2 << 20) : 0;
             return !Temporaries(kPrefix).empty() && PartialBytes() >= on_disk;
           }});
    }
    return points;
  }
  // Inside the file store's commit, whose system calls are: fsync of the object's temporary
  // file, fsync of the checksum's temporary file, renameat2 of the checksum onto its name,
  // fsync of the directory, renameat2 of the object onto its name, fsync of the directory. A
  // kill -9 before each leaves at most temporary files and a checksum without its object,
  // which the next backup removes; a kill after the object's rename leaves a complete backup.
  static std::vector<KillPoint> CommitPoints() {
    return {
        {"object written, before its fsync", {}, 0, nullptr, true, KillAtSyscall("fsync", 1)},
        {"checksum written, before its fsync", {}, 0, nullptr, true, KillAtSyscall("fsync", 2)},
        {"checksum synced, before it is published",
         {},
         0,
         nullptr,
         true,
         KillAtSyscall("renameat2", 1)},
        {"checksum published, before the object is",
         {},
         0,
         nullptr,
         true,
         KillAtSyscall("renameat2", 2)},
        {"object published, before the directory's fsync",
         {},
         0,
         nullptr,
         false,
         KillAtSyscall("fsync", 4)},
    };
  }
  std::vector<KillPoint> Points(HttpFaultProxy&) override {
    std::vector<KillPoint> points = MidUploadPoints();
    for (KillPoint& p : CommitPoints()) points.push_back(std::move(p));
    return points;
  }
  static void ExpectStrace() {
    RunResult probe = ::bao::testing::Run({"strace", "-qq", "-o", "/dev/null", "true"});
    ASSERT_EQ(probe.exit_code, 0) << "strace cannot trace here (scripts/setup.sh --peers "
                                     "installs it; ptrace must be allowed): "
                                  << probe.err;
  }
  // No store endpoint: the proxy the property test makes is never used.
  int StorePort() override { return PortOf(server_->Url(0)); }
  std::string Direct() override { return ""; }
  void Damage(const std::string& key) override {
    std::ofstream(root_.path() + "/" + key, std::ios::binary | std::ios::trunc)
        << "not what was recorded";
  }

  TempDir root_;
};

TEST_F(FileCrashTest, KilledMidUploadThenCleanedUp) {
  // Another cluster's temporary file: never touched.
  std::filesystem::create_directories(root_.path() + "/ns/other");
  WriteText(root_.path() + "/ns/other/.x.snap.partial-00", "partial");
  for (const KillPoint& p : MidUploadPoints()) KillAndRecover(nullptr, "", p);
  EXPECT_TRUE(std::filesystem::exists(root_.path() + "/ns/other/.x.snap.partial-00"));
}

TEST_F(FileCrashTest, KilledInsideTheCommitThenCleanedUp) {
  ExpectStrace();
  for (const KillPoint& p : CommitPoints()) KillAndRecover(nullptr, "", p);
}

TEST_F(FileCrashTest, TheNewestVerifiableBackupSurvivesAnySequence) {
  ExpectStrace();
  CheckTheNewestVerifiableBackupSurvives(kPropertySteps);
}

// The threshold is checked before anything is contacted; a negative or malformed one is a
// configuration error naming the flag, on backup and on prune.
TEST_F(FileCrashTest, AMalformedThresholdIsAConfigurationError) {
  for (const char* bad : {"-1h", "soon", ""}) {
    std::vector<std::string> args = BackupArgs("");
    args.insert(args.end(), {"--cleanup-older-than", bad});
    RunResult r = Cli(args, Env());
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_EQ(LastJson(r)["stage"], "config") << r.out;
    EXPECT_NE(LastJson(r)["error"].get<std::string>().find("--cleanup-older-than"),
              std::string::npos)
        << r.out;
    RunResult p = Cli({"prune", "--provider", "file", "--bucket", root_.path(), "--namespace", "ns",
                       "--cluster", "bao", "--max-count", "3", "--cleanup-older-than", bad});
    EXPECT_EQ(p.exit_code, 1) << Describe(p);
  }
  EXPECT_EQ(Files(root_.path()), std::vector<std::string>{});
}

}  // namespace
}  // namespace bao::testing
