// No secret ever leaves bao-backup: every command (backup, list, verify, restore, prune) and the
// standalone scheduler run with recognisable secret values - OpenBao tokens, a JWT, S3 secret
// keys and session tokens (MinIO), an Azure account key, connection string and SAS (Azurite),
// a GCS service-account key (fake-gcs-server and a token endpoint run here), passwords in URL
// user-info - succeeding and failing (wrong value, refused, unreachable, SIGTERM), in both log
// formats at debug level. None of the values may appear in stdout, stderr, the result file, the
// stored objects' metadata, or the scheduler's state file. The operator's side is in
// real_k8s_secrets_test.cc.
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli_fixture.h"
#include "common/time.h"
#include "http/client.h"
#include "schedule/cron.h"
#include "secret_check.h"
#include "support/azurite.h"
#include "support/fake_gcs.h"
#include "support/minio.h"
#include "support/test_pki.h"

namespace bao::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The secret values handed to bao-backup. Each carries kSecretMarker.
constexpr const char* kBaoToken = "s.S3CR3T-bao-reader-token-5f0c9a7e2b4d6f81";
constexpr const char* kBaoAdminToken = "s.S3CR3T-bao-admin-token-b3e1d7a90c2f4e68";
constexpr const char* kBaoWrongToken = "s.S3CR3T-bao-wrong-token-0d6b2f8c4a1e7395";
constexpr const char* kBaoWeakToken = "s.S3CR3T-bao-weak-token-7c3e9a1f5b0d2846";
constexpr const char* kBaoInlineToken = "s.S3CR3T-bao-inline-token-e5a3c1f7d9b20468";
constexpr const char* kS3AccessKey = "baosecretsroot";
constexpr const char* kS3SecretKey = "S3CR3T-s3-secret-access-key-7f3a9c1e5b2d4f60";
constexpr const char* kS3WrongSecretKey = "S3CR3T-s3-wrong-secret-key-2e8d4b6a0c9f1735";
constexpr const char* kS3WrongSessionToken = "S3CR3T-s3-wrong-session-token-9b1f5d3e7a2c4086";
constexpr const char* kAzureAccount = "baosecrets";
// Base64 (the length a multiple of 4), as an account key is.
constexpr const char* kAzureKey =
    "S3CR3TazureAccountKey4d8f2b6e0a9c1e3f5b7d9a1c3e5f7b9d1a3c5e7f0b4";
constexpr const char* kAzureWrongKey =
    "S3CR3TazureWrongAccountKey0e2c4a6b8d1f3e5a7c9b1d3f5e7a9c1b3d5f7e9a1c";
constexpr const char* kGcsAccessToken = "ya29.S3CR3T-gcs-access-token-4c8e2a6f0b3d7159";
constexpr const char* kUrlPassword = "S3CR3T-url-password-8d2f6b0a4e1c9735";
constexpr const char* kJwtRole = "backup-role";
constexpr const char* kJwtSubject = "system:serviceaccount:ns1:bao-backup";

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

TEST(SecretsCheck, FindsEveryFormAndNamesTheSecret) {
  SecretList list;
  list.Add("s3 key", "S3CR3T-x/y+z\"q");
  list.AddPattern("issued token", R"(s\.[0-9a-f]{48})");
  EXPECT_TRUE(list.NoneIn("clean", "nothing to see, [REDACTED], AWS_SECRET_ACCESS_KEY"));
  for (const std::string& text :
       {std::string("key=S3CR3T-x/y+z\"q;"), std::string(R"({"k":"S3CR3T-x/y+z\"q"})"),
        std::string("?sig=S3CR3T-x%2Fy%2Bz%22q&"),
        "data: " + crypto::Base64Encode("S3CR3T-x/y+z\"q")}) {
    ::testing::AssertionResult r = list.NoneIn("somewhere", text);
    EXPECT_FALSE(r) << text;
    EXPECT_NE(std::string(r.message()).find("\"s3 key\""), std::string::npos) << r.message();
    EXPECT_NE(std::string(r.message()).find("somewhere"), std::string::npos) << r.message();
  }
  EXPECT_FALSE(list.NoneIn("x", "token s." + std::string(48, 'a')));
  EXPECT_FALSE(list.NoneIn("x", "cut short: S3CR3T-x/"));  // the marker alone
}

// A TCP listener that accepts connections and never answers: a peer that hangs, so that a
// command is surely under way when the test sends SIGTERM.
class Blackhole {
 public:
  Blackhole() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 64) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "blackhole: cannot listen";
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        std::lock_guard<std::mutex> lock(mu_);
        clients_.push_back(c);
        ++connections_;
      }
    });
  }
  ~Blackhole() {
    stop_ = true;
    thread_.join();
    for (int c : clients_) close(c);
    close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<int> clients_;
  std::thread thread_;
};

// An OAuth token endpoint for the GCS service-account flow: it checks the RS256 assertion with
// the public key it is given and answers kGcsAccessToken; every assertion it received is kept
// (each is a secret too).
class GcsTokenEndpoint {
 public:
  explicit GcsTokenEndpoint(std::string public_pem) : public_pem_(std::move(public_pem)) {
    server_.Post("/token", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string jwt = req.get_param_value("assertion");
      {
        std::lock_guard<std::mutex> lock(mu_);
        assertions_.push_back(jwt);
      }
      size_t dot = jwt.rfind('.');
      Result<std::string> sig =
          crypto::Base64Decode(dot == std::string::npos ? "" : jwt.substr(dot + 1));
      Result<bool> ok = sig.ok() ? crypto::RsaSha256Verify(public_pem_, jwt.substr(0, dot), *sig)
                                 : Result<bool>(false);
      if (!ok.ok() || !*ok) {
        res.status = 400;
        res.set_content(R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})",
                        "application/json");
        return;
      }
      res.set_content(
          json{{"access_token", kGcsAccessToken}, {"expires_in", 3599}, {"token_type", "Bearer"}}
              .dump(),
          "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~GcsTokenEndpoint() {
    server_.stop();
    thread_.join();
  }
  std::string uri() const { return "http://127.0.0.1:" + std::to_string(port_) + "/token"; }
  std::vector<std::string> assertions() const {
    std::lock_guard<std::mutex> lock(mu_);
    return assertions_;
  }

 private:
  std::string public_pem_;
  mutable std::mutex mu_;
  std::vector<std::string> assertions_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

class SecretsTest : public CliTest {
 protected:
  void SetUp() override {
    Result<RsaKeyPair> jwt_key = MakeRsaKeyPair();
    ASSERT_TRUE(jwt_key.ok());
    jwt_key_ = *jwt_key;
    WriteText(work_.File("jwt.pub"), jwt_key_.public_pem);
    BaoTestServerOptions o;
    o.nodes = 2;
    o.state_size = 2 << 20;
    o.admin_token = kBaoAdminToken;
    o.jwt_public_key_file = work_.File("jwt.pub");
    bao_ = std::make_unique<BaoTestServer>(o);
    Status s = bao_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    const json read = {{"sys/storage/raft/snapshot", {"read"}}};
    ASSERT_TRUE(bao_->AddToken(kBaoToken, read).ok());
    ASSERT_TRUE(bao_->AddToken(kBaoInlineToken, read).ok());
    ASSERT_TRUE(bao_->AddToken(kBaoWeakToken, {{"sys/health", {"read"}}}).ok());
    ASSERT_TRUE(bao_->AddJwtRole({{"name", kJwtRole},
                                  {"bound_audiences", {"openbao-internal"}},
                                  {"bound_subject", kJwtSubject},
                                  {"policies", {{"sys/storage/raft/snapshot", {"read", "update"}}}},
                                  {"ttl", 600}})
                    .ok());
    for (const auto& [name, value] : std::vector<std::pair<const char*, const char*>>{
             {"OpenBao reader token", kBaoToken},
             {"OpenBao admin token", kBaoAdminToken},
             {"wrong OpenBao token", kBaoWrongToken},
             {"OpenBao token without the capability", kBaoWeakToken},
             {"OpenBao token inline in the scheduler config", kBaoInlineToken},
             {"S3 secret access key", kS3SecretKey},
             {"wrong S3 secret access key", kS3WrongSecretKey},
             {"wrong S3 session token", kS3WrongSessionToken},
             {"Azure account key", kAzureKey},
             {"wrong Azure account key", kAzureWrongKey},
             {"GCS access token", kGcsAccessToken},
             {"password in URL user-info", kUrlPassword}}) {
      secrets_.Add(name, value);
    }
    // What OpenBao issues for a JWT login: s.<48 hex>.
    secrets_.AddPattern("OpenBao token issued for a JWT", R"(s\.[0-9a-f]{48})");
    WriteText(work_.File("token"), std::string(kBaoToken) + "\n");
  }

  // A JWT for the role, signed with the key the server trusts unless `key` is given.
  std::string Jwt(json changes = json::object(), const std::string& key = "") {
    int64_t now = UnixNow();
    json claims = {{"iss", "https://kubernetes.default.svc"},
                   {"sub", kJwtSubject},
                   {"aud", {"openbao-internal"}},
                   {"iat", now},
                   {"nbf", now},
                   {"exp", now + 600}};
    if (changes.is_object()) claims.update(changes);
    Result<std::string> jwt = MakeJwt(key.empty() ? jwt_key_.private_pem : key, claims);
    EXPECT_TRUE(jwt.ok());
    std::string token = jwt.ok() ? *jwt : "";
    secrets_.Add("JWT " + std::to_string(++jwts_), token);
    secrets_.Add("JWT signature " + std::to_string(jwts_), token.substr(token.rfind('.') + 1));
    return token;
  }

  // The environment of every run: nothing ambient, then `extra`.
  static std::map<std::string, std::string> Env(const std::map<std::string, std::string>& extra) {
    std::map<std::string, std::string> env;
    for (const char* name :
         {"BAO_TOKEN", "BAO_ADDR", "BAO_CACERT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
          "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_PROFILE",
          "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "GCE_METADATA_HOST"}) {
      env[name] = "";
    }
    env["AWS_EC2_METADATA_DISABLED"] = "true";
    env["GCE_METADATA_HOST"] = "127.0.0.1:1";
    for (const auto& [k, v] : extra) env[k] = v;
    return env;
  }

  static bool WritesResultFile(const std::vector<std::string>& args) {
    return args.front() != "list";
  }

  void ExpectNoSecrets(const std::string& what, const RunResult& r,
                       const std::string& result_file) {
    EXPECT_TRUE(secrets_.NoneIn(what + " stdout", r.out));
    EXPECT_TRUE(secrets_.NoneIn(what + " stderr", r.err));
    if (result_file.empty()) return;
    std::string text = ReadText(result_file);
    EXPECT_FALSE(text.empty()) << what << ": no result file";
    EXPECT_TRUE(secrets_.NoneIn(what + " result file", text));
  }

  // Runs `args` (a subcommand and its flags) in both log formats at debug level, with a result
  // file when the command writes one; expects `exit_code` each time and no secret in stdout,
  // stderr or the result file. Returns both runs.
  std::vector<RunResult> Check(const std::string& what, const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env, int exit_code) {
    std::vector<RunResult> runs;
    for (const char* format : {"text", "json"}) {
      const std::string label = what + " [" + format + " log]";
      std::vector<std::string> argv = {"--log-format", format, "--log-level", "debug"};
      argv.insert(argv.end(), args.begin(), args.end());
      std::string result_file;
      if (WritesResultFile(args)) {
        result_file = work_.File("result-" + std::to_string(++results_));
        argv.insert(argv.end(), {"--result-file", result_file});
      }
      RunResult r = Cli(argv, Env(env));
      EXPECT_EQ(r.exit_code, exit_code) << label << "\n" << Describe(r);
      if (dynamic_secrets_) dynamic_secrets_();
      ExpectNoSecrets(label, r, result_file);
      runs.push_back(r);
    }
    return runs;
  }

  // Starts `args` in both log formats, sends SIGTERM once `under_way()` has grown since the
  // start (the command is waiting on a peer that does not answer), and expects the
  // cancellation exit code and no secret in stdout, stderr or the result file. With
  // `expect_result` the command must also have ended on its own with the Cancelled result;
  // without, the process may have been ended by the --shutdown-grace timer instead (a hung
  // storage request: the storage layer does not take the Context yet, see store.h).
  void CheckSigterm(const std::string& what, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env,
                    const std::function<int()>& under_way, bool expect_result = true) {
    for (const char* format : {"text", "json"}) {
      const std::string label = what + " [" + format + " log]";
      std::vector<std::string> argv = {BuildBinary("bao-backup"),
                                       "--log-format",
                                       format,
                                       "--log-level",
                                       "debug",
                                       "--shutdown-grace",
                                       "2s"};
      argv.insert(argv.end(), args.begin(), args.end());
      std::string result_file;
      if (WritesResultFile(args)) {
        result_file = work_.File("result-" + std::to_string(++results_));
        argv.insert(argv.end(), {"--result-file", result_file});
      }
      const int before = under_way();
      Process p;
      ASSERT_TRUE(p.Start(argv, Env(env))) << label;
      ASSERT_TRUE(WaitUntil([&] { return under_way() > before || !p.Running(); }, 30s))
          << label << ": never under way\n"
          << p.Stderr();
      ASSERT_TRUE(p.Running()) << label << ": ended before the signal\n"
                               << p.Stdout() << p.Stderr();
      p.Signal(SIGTERM);
      RunResult r{p.Wait(30s), p.Stdout(), p.Stderr()};
      EXPECT_EQ(r.exit_code, 7) << label << "\n" << Describe(r);
      if (expect_result) {
        EXPECT_NE(r.out.find("\"reason\":\"Cancelled\""), std::string::npos) << label << r.out;
      }
      if (dynamic_secrets_) dynamic_secrets_();
      ExpectNoSecrets(label, r, expect_result ? result_file : "");
      if (!expect_result) {
        EXPECT_TRUE(secrets_.NoneIn(label + " result file", ReadText(result_file)));
      }
    }
  }

  // How many snapshot downloads the OpenBao test server `server` has seen.
  static int SnapshotRequests(BaoTestServer& server) {
    Result<json> requests = server.Requests();
    int n = 0;
    for (const json& r : requests.ok() ? *requests : json::array()) {
      n += r.value("path", "") == "/v1/sys/storage/raft/snapshot" && r["method"] == "GET";
    }
    return n;
  }

  // backup, list, verify, restore (into the OpenBao test server, --yes) and prune with the
  // target `store` (provider, bucket, credentials, namespace, cluster), each in both log
  // formats, each expected to end with `exit_code`. Each stored object's metadata, as
  // `inspect_` reads it with the provider's own tool, must hold no secret (read before prune
  // deletes one of the two). Returns the keys the backups stored.
  std::vector<std::string> EveryCommand(const std::string& what,
                                        const std::vector<std::string>& store, int exit_code,
                                        const std::map<std::string, std::string>& env = {}) {
    auto with = [&](std::vector<std::string> args) {
      args.insert(args.end(), store.begin(), store.end());
      return args;
    };
    auto token = [&](const char* t) {
      std::map<std::string, std::string> e = env;
      e["BAO_TOKEN"] = t;
      return e;
    };
    std::vector<std::string> keys;
    for (const RunResult& r : Check(
             what + ": backup", with({"backup", "--bao-addr", bao_->Url(1), "--leader-wait", "2s"}),
             token(kBaoToken), exit_code)) {
      if (exit_code == 0) keys.push_back(LastJson(r).value("key", ""));
    }
    for (const std::string& key : keys) {
      EXPECT_TRUE(inspect_ != nullptr);
      if (inspect_) {
        EXPECT_TRUE(secrets_.NoneIn(what + ": metadata of " + key, inspect_(key)));
      }
    }
    Check(what + ": list", with({"list"}), env, exit_code);
    Check(what + ": verify", with({"verify", "--latest"}), env, exit_code);
    Check(what + ": restore", with({"restore", "--latest", "--yes", "--bao-addr", bao_->Url(0)}),
          token(kBaoAdminToken), exit_code);
    Check(what + ": prune", with({"prune", "--max-count", "1"}), env, exit_code);
    return keys;
  }

  // Every command with `store` pointed at a peer that accepts connections and never answers,
  // SIGTERM while it waits; and backup into `real_store` with the snapshot stalled midway.
  void EveryCommandCancelled(const std::string& what, const std::vector<std::string>& store,
                             Blackhole& hole, const std::vector<std::string>& real_store,
                             const std::map<std::string, std::string>& env = {}) {
    auto with = [&](std::vector<std::string> args, const std::vector<std::string>& s) {
      args.insert(args.end(), s.begin(), s.end());
      return args;
    };
    auto token = [&](const char* t) {
      std::map<std::string, std::string> e = env;
      e["BAO_TOKEN"] = t;
      return e;
    };
    auto connected = [&] { return hole.connections(); };
    CheckSigterm(what + ": backup, storage hangs",
                 with({"backup", "--bao-addr", bao_->Url(0)}, store), token(kBaoToken), connected,
                 false);
    CheckSigterm(what + ": list, storage hangs", with({"list"}, store), env, connected, false);
    CheckSigterm(what + ": verify, storage hangs", with({"verify", "--latest"}, store), env,
                 connected, false);
    CheckSigterm(what + ": restore, storage hangs",
                 with({"restore", "--latest", "--yes", "--bao-addr", bao_->Url(0)}, store),
                 token(kBaoAdminToken), connected, false);
    CheckSigterm(what + ": prune, storage hangs", with({"prune", "--max-count", "1"}, store), env,
                 connected, false);
    ASSERT_TRUE(bao_->SetFaults({{"stall_after_bytes", 1 << 20}}).ok());
    CheckSigterm(what + ": backup, snapshot stalled midway",
                 with({"backup", "--bao-addr", bao_->Url(0)}, real_store), token(kBaoToken),
                 [&] { return SnapshotRequests(*bao_); });
    ASSERT_TRUE(bao_->ClearFaults().ok());
  }

  // A directory of credential files named after the Secret keys.
  std::string CredentialsDir(const std::map<std::string, std::string>& files) {
    std::string dir = work_.File("creds-" + std::to_string(++dirs_));
    std::filesystem::create_directories(dir);
    for (const auto& [name, value] : files) WriteText(dir + "/" + name, value + "\n");
    return dir;
  }

  // The namespace and cluster flags of a fresh cluster (its own backups).
  std::vector<std::string> NewCluster() {
    return {"--namespace", "ns1", "--cluster", "c" + std::to_string(++clusters_)};
  }

  static std::vector<std::string> Concat(std::vector<std::string> a,
                                         const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  SecretList secrets_;
  std::function<void()> dynamic_secrets_;  // adds secrets learnt during a run, before the check
  // What the provider's own tool shows of a stored object (metadata, tags); fails the test when
  // the object is not there.
  std::function<std::string(const std::string& key)> inspect_;
  TempDir work_;
  RsaKeyPair jwt_key_;
  std::unique_ptr<BaoTestServer> bao_;
  int results_ = 0, dirs_ = 0, clusters_ = 0, jwts_ = 0;
};

// The OpenBao token from each of its sources (BAO_TOKEN, --bao-token-file, --bao-token) and
// a JWT login, for backup and restore into a local directory: succeeding, wrong, refused,
// unreachable and cancelled; the checksum files beside the objects hold no secret either.
TEST_F(SecretsTest, OpenBaoTokensAndJwt) {
  TempDir store;
  const std::vector<std::string> target = {"--bucket", store.path(), "--namespace",
                                           "ns1",      "--cluster",  "bao"};
  auto backup = [&](std::vector<std::string> extra, const std::string& addr = "") {
    return Concat(
        Concat({"backup", "--bao-addr", addr.empty() ? bao_->Url(1) : addr, "--leader-wait", "2s"},
               target),
        extra);
  };
  auto restore = [&](std::vector<std::string> extra, const std::string& addr = "") {
    return Concat(Concat({"restore", "--latest", "--yes", "--bao-addr",
                          addr.empty() ? bao_->Url(0) : addr, "--leader-wait", "2s"},
                         target),
                  extra);
  };
  const std::string dead = "http://127.0.0.1:" + std::to_string(FreePort());
  WriteText(work_.File("admin-token"), kBaoAdminToken);
  WriteText(work_.File("wrong-token"), kBaoWrongToken);

  // Succeeding, from each source.
  Check("token in BAO_TOKEN: backup", backup({}), {{"BAO_TOKEN", kBaoToken}}, 0);
  Check("token file: backup", backup({"--bao-token-file", work_.File("token")}), {}, 0);
  Check("token flag: backup", backup({"--bao-token", kBaoToken}), {}, 0);
  Check("token in BAO_TOKEN: restore", restore({}), {{"BAO_TOKEN", kBaoAdminToken}}, 0);
  Check("token file: restore", restore({"--bao-token-file", work_.File("admin-token")}), {}, 0);
  Check("token flag: restore", restore({"--bao-token", kBaoAdminToken}), {}, 0);
  // Wrong (unknown to OpenBao), refused (known, without the capability), unreachable.
  Check("wrong token: backup", backup({"--bao-token-file", work_.File("wrong-token")}), {}, 2);
  Check("wrong token: restore", restore({}), {{"BAO_TOKEN", kBaoWrongToken}}, 2);
  Check("refused token: backup", backup({}), {{"BAO_TOKEN", kBaoWeakToken}}, 2);
  Check("refused token: restore", restore({"--bao-token", kBaoToken}), {}, 2);
  Check("unreachable OpenBao: backup", backup({}, dead), {{"BAO_TOKEN", kBaoToken}}, 3);
  Check("unreachable OpenBao: restore", restore({}, dead), {{"BAO_TOKEN", kBaoAdminToken}}, 3);

  // JWT auth: a good JWT; one signed by another key, one for another audience; unreachable.
  auto jwt_file = [&](const std::string& jwt) {
    std::string path = work_.File("jwt-" + std::to_string(jwts_));
    WriteText(path, jwt);
    return std::vector<std::string>{"--jwt-role", kJwtRole, "--jwt-token-file", path};
  };
  Check("JWT: backup", backup(jwt_file(Jwt())), {}, 0);
  Check("JWT: restore", restore(jwt_file(Jwt())), {}, 0);
  Result<RsaKeyPair> other = MakeRsaKeyPair();
  ASSERT_TRUE(other.ok());
  Check("JWT signed by another key: backup", backup(jwt_file(Jwt({}, other->private_pem))), {}, 2);
  Check("JWT for another audience: restore", restore(jwt_file(Jwt({{"aud", {"somebody-else"}}}))),
        {}, 2);
  Check("JWT, unreachable OpenBao: backup", backup(jwt_file(Jwt()), dead), {}, 3);

  // Cancelled: the snapshot stalls midway; OpenBao accepts and never answers.
  ASSERT_TRUE(bao_->SetFaults({{"stall_after_bytes", 1 << 20}}).ok());
  CheckSigterm("token, snapshot stalled: backup", backup({}), {{"BAO_TOKEN", kBaoToken}},
               [&] { return SnapshotRequests(*bao_); });
  CheckSigterm("JWT, snapshot stalled: backup", backup(jwt_file(Jwt())), {},
               [&] { return SnapshotRequests(*bao_); });
  ASSERT_TRUE(bao_->ClearFaults().ok());
  Blackhole hole;
  CheckSigterm("token, OpenBao hangs: restore", restore({}, hole.url()),
               {{"BAO_TOKEN", kBaoAdminToken}}, [&] { return hole.connections(); });
  CheckSigterm("JWT, OpenBao hangs: restore", restore(jwt_file(Jwt()), hole.url()), {},
               [&] { return hole.connections(); });

  // The objects and their checksum files.
  std::vector<std::string> files = Files(store.path());
  EXPECT_GE(files.size(), 8u);  // four backups, each with its checksum file
  for (const std::string& f : files) {
    EXPECT_TRUE(secrets_.NoneIn("stored file name " + f, f));
    if (f.ends_with(".sha256")) {
      EXPECT_TRUE(secrets_.NoneIn("checksum file " + f, ReadText(store.path() + "/" + f)));
    }
  }
}

// S3 (MinIO): the secret access key and a session token, from the credentials directory and
// from the environment; a wrong secret, a wrong session token, an unreachable endpoint, and
// SIGTERM. The objects' metadata and tags, read with the AWS CLI, hold no secret.
TEST_F(SecretsTest, S3SecretKeyAndSessionToken) {
  MinioServer minio;
  minio.SetRootCredentials(kS3AccessKey, kS3SecretKey);
  std::string error;
  ASSERT_TRUE(minio.Start(&error)) << error;
  ASSERT_TRUE(minio.CreateBucket("backups", &error)) << error;
  // Temporary credentials from MinIO's STS: key, secret and session token.
  RunResult sts = minio.Aws({"sts", "assume-role", "--role-arn", "arn:xxx:xxx:xxx:xxxx",
                             "--role-session-name", "secrets-test"});
  ASSERT_EQ(sts.exit_code, 0) << sts.err;
  json c = json::parse(sts.out)["Credentials"];
  const std::string sts_key = c["AccessKeyId"], sts_secret = c["SecretAccessKey"],
                    sts_token = c["SessionToken"];
  secrets_.Add("STS secret access key", sts_secret);
  secrets_.Add("STS session token", sts_token);

  auto s3 = [&](const std::string& endpoint, const std::string& creds_dir) {
    std::vector<std::string> flags = {
        "--provider", "s3",      "--endpoint",    endpoint, "--use-path-style",
        "--bucket",   "backups", "--path-prefix", "p"};
    if (!creds_dir.empty()) flags.insert(flags.end(), {"--credentials-dir", creds_dir});
    return Concat(flags, NewCluster());
  };
  const std::string root =
      CredentialsDir({{"accessKeyId", kS3AccessKey}, {"secretAccessKey", kS3SecretKey}});
  const std::string session = CredentialsDir(
      {{"accessKeyId", sts_key}, {"secretAccessKey", sts_secret}, {"sessionToken", sts_token}});

  inspect_ = [&](const std::string& key) {
    std::string seen;
    for (const char* call : {"head-object", "get-object-tagging", "get-object-attributes"}) {
      std::vector<std::string> args = {"s3api", call, "--bucket", "backups", "--key", key};
      if (std::string(call) == "get-object-attributes") {
        args.insert(args.end(), {"--object-attributes", "ETag", "Checksum", "ObjectParts",
                                 "StorageClass", "ObjectSize"});
      }
      RunResult r = minio.Aws(args);
      EXPECT_EQ(r.exit_code, 0) << call << " " << key << ": " << r.err;
      seen += r.out + r.err;
    }
    return seen;
  };
  EXPECT_EQ(EveryCommand("S3 secret key", s3(minio.endpoint(), root), 0).size(), 2u);
  EXPECT_EQ(EveryCommand("S3 session token", s3(minio.endpoint(), session), 0).size(), 2u);
  EXPECT_EQ(EveryCommand("S3 session token from the environment", s3(minio.endpoint(), ""), 0,
                         {{"AWS_ACCESS_KEY_ID", sts_key},
                          {"AWS_SECRET_ACCESS_KEY", sts_secret},
                          {"AWS_SESSION_TOKEN", sts_token}})
                .size(),
            2u);

  EveryCommand("S3 wrong secret key",
               s3(minio.endpoint(), CredentialsDir({{"accessKeyId", kS3AccessKey},
                                                    {"secretAccessKey", kS3WrongSecretKey}})),
               5);
  EveryCommand("S3 wrong session token",
               s3(minio.endpoint(), CredentialsDir({{"accessKeyId", sts_key},
                                                    {"secretAccessKey", sts_secret},
                                                    {"sessionToken", kS3WrongSessionToken}})),
               5);
  EveryCommand("S3 wrong session token from the environment", s3(minio.endpoint(), ""), 5,
               {{"AWS_ACCESS_KEY_ID", sts_key},
                {"AWS_SECRET_ACCESS_KEY", sts_secret},
                {"AWS_SESSION_TOKEN", kS3WrongSessionToken}});
  EveryCommand("S3 unreachable", s3("http://127.0.0.1:" + std::to_string(FreePort()), session), 5);
  Blackhole hole;
  EveryCommandCancelled("S3 session token", s3(hole.url(), session), hole,
                        s3(minio.endpoint(), session));
}

// Azure (Azurite, an account with a recognisable key): the account key file, a connection
// string with the key, and one with a SAS; a wrong key, a tampered SAS, an unreachable
// endpoint, SIGTERM. The blobs' metadata, read with @azure/storage-blob, hold no secret.
TEST_F(SecretsTest, AzureAccountKeyConnectionStringAndSas) {
  Azurite azurite;
  azurite.AddAccount(kAzureAccount, kAzureKey);
  std::string error;
  ASSERT_TRUE(azurite.Start(&error)) << error;
  const std::string endpoint = azurite.endpoint(kAzureAccount);
  const std::string conn = std::string("DefaultEndpointsProtocol=http;AccountName=") +
                           kAzureAccount + ";AccountKey=" + kAzureKey +
                           ";BlobEndpoint=" + endpoint + ";";
  RunResult created = azurite.Check({"create", "backups"}, conn);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  RunResult sas_run = azurite.Check({"sas", "backups"}, conn);
  ASSERT_EQ(sas_run.exit_code, 0) << sas_run.err;
  const std::string sas = json::parse(LastLine(sas_run.out))["sas"];
  secrets_.Add("Azure SAS", sas);
  size_t sig_at = sas.find("sig=");
  ASSERT_NE(sig_at, std::string::npos) << sas;
  const std::string sig = sas.substr(sig_at + 4, sas.find('&', sig_at) - sig_at - 4);
  secrets_.Add("Azure SAS signature", sig);
  secrets_.Add("Azure SAS signature, decoded", PercentDecode(sig));
  std::string bad_sas = sas;
  bad_sas[sig_at + 4] = bad_sas[sig_at + 4] == 'A' ? 'B' : 'A';
  secrets_.Add("tampered Azure SAS signature", bad_sas.substr(sig_at + 4, sig.size()));

  auto azure = [&](const std::string& endpoint_flag, const std::string& creds_dir) {
    std::vector<std::string> flags = {"--provider", "azure",   "--storage-account", kAzureAccount,
                                      "--bucket",   "backups", "--credentials-dir", creds_dir};
    if (!endpoint_flag.empty()) flags.insert(flags.end(), {"--endpoint", endpoint_flag});
    return Concat(flags, NewCluster());
  };
  const std::string key_dir = CredentialsDir({{"accountKey", kAzureKey}});
  inspect_ = [&](const std::string& key) {
    RunResult props = azurite.Check({"props", "backups", key}, conn);
    EXPECT_EQ(props.exit_code, 0) << props.err;
    json j = json::parse(LastLine(props.out), nullptr, false);
    EXPECT_TRUE(j.is_object() && j.value("exists", false)) << key << ": " << props.out;
    return props.out + props.err + azurite.Check({"list", "backups", ""}, conn).out;
  };
  EXPECT_EQ(EveryCommand("Azure account key", azure(endpoint, key_dir), 0).size(), 2u);
  EXPECT_EQ(EveryCommand("Azure connection string",
                         azure("", CredentialsDir({{"connectionString", conn}})), 0)
                .size(),
            2u);
  EXPECT_EQ(
      EveryCommand(
          "Azure SAS",
          azure("", CredentialsDir({{"connectionString", "BlobEndpoint=" + endpoint +
                                                             ";SharedAccessSignature=" + sas}})),
          0)
          .size(),
      2u);

  EveryCommand("Azure wrong account key",
               azure(endpoint, CredentialsDir({{"accountKey", kAzureWrongKey}})), 5);
  EveryCommand(
      "Azure connection string with a wrong key",
      azure("", CredentialsDir({{"connectionString", std::string("AccountName=") + kAzureAccount +
                                                         ";AccountKey=" + kAzureWrongKey +
                                                         ";BlobEndpoint=" + endpoint}})),
      5);
  EveryCommand(
      "Azure tampered SAS",
      azure("", CredentialsDir({{"connectionString", "BlobEndpoint=" + endpoint +
                                                         ";SharedAccessSignature=" + bad_sas}})),
      5);
  EveryCommand(
      "Azure unreachable",
      azure("http://127.0.0.1:" + std::to_string(FreePort()) + "/" + kAzureAccount, key_dir), 5);
  Blackhole hole;
  EveryCommandCancelled("Azure account key", azure(hole.url() + "/" + kAzureAccount, key_dir), hole,
                        azure(endpoint, key_dir));
}

// GCS (fake-gcs-server): the service-account key in credentials.json, exchanged at a token
// endpoint run here for a recognisable access token; a key the endpoint refuses, an unreachable
// token endpoint and storage endpoint, SIGTERM. The objects' resources (metadata included),
// read with the JSON API, hold no secret.
TEST_F(SecretsTest, GcsServiceAccountKey) {
  FakeGcsServer gcs;
  std::string error;
  ASSERT_TRUE(gcs.Start(&error)) << error;
  ASSERT_TRUE(gcs.CreateBucket("backups", &error)) << error;
  Result<RsaKeyPair> key = MakeRsaKeyPair();
  Result<RsaKeyPair> other = MakeRsaKeyPair();
  ASSERT_TRUE(key.ok() && other.ok());
  GcsTokenEndpoint tokens(key->public_pem);
  // Each line of the keys' PEM bodies is a secret (a leak of any part of a key is found).
  for (const auto& [name, pem] : {std::pair<std::string, std::string>{"GCS key", key->private_pem},
                                  {"refused GCS key", other->private_pem}}) {
    secrets_.Add(name, pem);
    std::istringstream lines(pem);
    int n = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find("-----") == std::string::npos && line.size() >= 16) {
        secrets_.Add(name + " line " + std::to_string(++n), line);
      }
    }
  }
  size_t seen = 0;
  dynamic_secrets_ = [&] {
    std::vector<std::string> a = tokens.assertions();
    for (; seen < a.size(); ++seen) {
      secrets_.Add("GCS token request assertion " + std::to_string(seen), a[seen]);
    }
  };
  auto key_file = [&](const std::string& pem, const std::string& token_uri) {
    return CredentialsDir(
        {{"credentials.json", json{{"type", "service_account"},
                                   {"project_id", "p"},
                                   {"private_key_id", "k1"},
                                   {"private_key", pem},
                                   {"client_email", "backup@p.iam.gserviceaccount.com"},
                                   {"token_uri", token_uri}}
                                  .dump()}});
  };
  auto gcs_flags = [&](const std::string& endpoint, const std::string& creds_dir) {
    return Concat({"--provider", "gcs", "--endpoint", endpoint, "--bucket", "backups",
                   "--credentials-dir", creds_dir},
                  NewCluster());
  };
  const std::string good = key_file(key->private_pem, tokens.uri());
  http::Client client;
  inspect_ = [&](const std::string& key) {
    http::Request req;
    req.url = gcs.url() + "/storage/v1/b/backups/o/" + http::UrlEncode(key);
    Result<http::Response> r = client.Do(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return std::string();
    EXPECT_EQ(r->status, 200) << r->body;
    // The checksum lives in the side object written before the object was published.
    http::Request side;
    side.url = gcs.url() + "/storage/v1/b/backups/o/" + http::UrlEncode(key + ".sha256") +
               "?alt=media";
    Result<http::Response> s = client.Do(side);
    EXPECT_TRUE(s.ok() && s->status == 200) << (s.ok() ? s->body : s.status().ToString());
    return r->body + (s.ok() ? s->body : std::string());
  };
  EXPECT_EQ(EveryCommand("GCS key", gcs_flags(gcs.url(), good), 0).size(), 2u);
  EXPECT_FALSE(tokens.assertions().empty()) << "the key was never exchanged for a token";

  EveryCommand("GCS key refused by the token endpoint",
               gcs_flags(gcs.url(), key_file(other->private_pem, tokens.uri())), 5);
  const std::string dead = "http://127.0.0.1:" + std::to_string(FreePort());
  EveryCommand("GCS token endpoint unreachable",
               gcs_flags(gcs.url(), key_file(key->private_pem, dead + "/token")), 5);
  EveryCommand("GCS storage unreachable", gcs_flags(dead, good), 5);
  Blackhole hole;
  EveryCommandCancelled("GCS key", gcs_flags(hole.url(), good), hole, gcs_flags(gcs.url(), good));
  dynamic_secrets_ = nullptr;
}

// Passwords in URL user-info (and a signature in a query): in --bao-addr and BAO_ADDR, in each
// provider's --endpoint, on the command line and in a --config file; all refused before any
// request, without repeating them.
TEST_F(SecretsTest, UrlUserInfo) {
  MinioServer minio;
  minio.SetRootCredentials(kS3AccessKey, kS3SecretKey);
  std::string error;
  ASSERT_TRUE(minio.Start(&error)) << error;
  ASSERT_TRUE(minio.CreateBucket("backups", &error)) << error;
  TempDir store;
  auto with_password = [](const std::string& url) {
    size_t at = url.find("://") + 3;
    return url.substr(0, at) + "backup-user:" + kUrlPassword + "@" + url.substr(at);
  };
  const std::vector<std::string> file = {"--bucket", store.path(), "--namespace",
                                         "ns1",      "--cluster",  "bao"};
  Check("user-info in --bao-addr: backup",
        Concat({"backup", "--bao-addr", with_password(bao_->Url(0))}, file),
        {{"BAO_TOKEN", kBaoToken}}, 1);
  Check("user-info in BAO_ADDR: backup", Concat({"backup"}, file),
        {{"BAO_TOKEN", kBaoToken}, {"BAO_ADDR", with_password(bao_->Url(0))}}, 1);
  Check("user-info in --bao-addr: restore",
        Concat({"restore", "--latest", "--yes", "--bao-addr", with_password(bao_->Url(0))}, file),
        {{"BAO_TOKEN", kBaoAdminToken}}, 1);
  EXPECT_EQ(Files(store.path()), std::vector<std::string>{});

  const std::string creds =
      CredentialsDir({{"accessKeyId", kS3AccessKey}, {"secretAccessKey", kS3SecretKey}});
  EveryCommand("user-info in the S3 --endpoint",
               Concat({"--provider", "s3", "--endpoint", with_password(minio.endpoint()),
                       "--use-path-style", "--bucket", "backups", "--credentials-dir", creds},
                      NewCluster()),
               1);
  // The same for the other providers, and a signature in the query: refused before any
  // request.
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(FreePort());
  EveryCommand("user-info in the GCS --endpoint",
               Concat({"--provider", "gcs", "--endpoint", with_password(nowhere), "--bucket",
                       "backups", "--credentials-dir", creds},
                      NewCluster()),
               1);
  EveryCommand("user-info in the Azure --endpoint",
               Concat({"--provider", "azure", "--storage-account", kAzureAccount, "--endpoint",
                       with_password(nowhere) + "/" + kAzureAccount, "--bucket", "backups",
                       "--credentials-dir", creds},
                      NewCluster()),
               1);
  EveryCommand("a signature in the query of the Azure --endpoint",
               Concat({"--provider", "azure", "--storage-account", kAzureAccount, "--endpoint",
                       nowhere + "/" + kAzureAccount + "?sv=2024-01-01&sig=" + kUrlPassword,
                       "--bucket", "backups", "--credentials-dir", creds},
                      NewCluster()),
               1);
  WriteText(work_.File("config.yaml"),
            "target:\n  provider: s3\n  endpoint: " + with_password(minio.endpoint()) +
                "\n  bucket: backups\n  usePathStyle: true\n");
  EveryCommand(
      "user-info in the S3 endpoint of --config",
      Concat({"--config", work_.File("config.yaml"), "--credentials-dir", creds}, NewCluster()), 1);
}

// The standalone scheduler (`schedule --config`), in both log formats at once: clusters with a
// token file, an inline token and a JWT, S3 credentials from a directory; one with a wrong
// token, one with a wrong S3 secret, one whose snapshot stalls until SIGTERM. Its log, its
// state file, its /metrics and its --status output hold no secret; nor do the objects'
// metadata.
TEST_F(SecretsTest, SchedulerTokenFileJwtAndS3Credentials) {
  MinioServer minio;
  minio.SetRootCredentials(kS3AccessKey, kS3SecretKey);
  std::string error;
  ASSERT_TRUE(minio.Start(&error)) << error;
  ASSERT_TRUE(minio.CreateBucket("backups", &error)) << error;
  BaoTestServerOptions so;
  so.nodes = 1;
  so.admin_token = "";
  BaoTestServer stalling(so);
  ASSERT_TRUE(stalling.Start().ok());
  ASSERT_TRUE(stalling.AddToken(kBaoToken, {{"sys/storage/raft/snapshot", {"read"}}}).ok());
  ASSERT_TRUE(stalling.SetFaults({{"stall_after_bytes", 100000}}).ok());
  WriteText(work_.File("wrong-token"), std::string(kBaoWrongToken) + "\n");
  WriteText(work_.File("jwt"), Jwt());
  const std::string creds =
      CredentialsDir({{"accessKeyId", kS3AccessKey}, {"secretAccessKey", kS3SecretKey}});
  const std::string wrong_creds =
      CredentialsDir({{"accessKeyId", kS3AccessKey}, {"secretAccessKey", kS3WrongSecretKey}});

  auto cluster = [&](const std::string& name, const std::string& addr, const std::string& auth,
                     const std::string& creds_dir, const std::string& prefix) {
    return "  - name: " + name + "\n    namespace: sched\n    openbao:\n      addresses: [" + addr +
           "]\n      leaderWait: 2s\n" + auth +
           "    backup:\n      schedule: \"0 * * * *\"\n      target:\n        provider: s3\n"
           "        endpoint: " +
           minio.endpoint() +
           "\n        bucket: backups\n        usePathStyle: true\n        pathPrefix: " + prefix +
           "\n        credentialsDir: " + creds_dir + "\n      retention:\n        maxCount: 3\n";
  };
  const std::string token_file = "      tokenFile: " + work_.File("token") + "\n";
  const std::vector<std::string> names = {"good",     "inline",   "jwt",
                                          "badtoken", "badstore", "stalled"};
  // A restart: every cluster last decided the slot before the current one, so the current
  // hour's slot (less than an hour old, within startingDeadlineSeconds) runs at once, and no
  // other during the test (unless it spans the top of the hour: the checks allow for that).
  const TimePoint now = SystemClock().Now();
  const TimePoint slot = *CronSchedule::Parse("0 * * * *")->Previous(now);
  struct Run {
    std::string format, config, state;
    Process process;
  };
  std::vector<std::unique_ptr<Run>> runs;
  for (const char* format : {"text", "json"}) {
    auto run = std::make_unique<Run>();
    run->format = format;
    run->config = work_.File(std::string("scheduler-") + format + ".yaml");
    run->state = work_.File(std::string("state-") + format + ".json");
    const std::string prefix = format;
    WriteText(run->config,
              "stateFile: " + run->state +
                  "\nmetricsAddress: 127.0.0.1:0\nstartingDeadlineSeconds: 3600\n"
                  "shutdownGracePeriodSeconds: 0\nclusters:\n" +
                  cluster("good", bao_->Url(1), token_file, creds, prefix) +
                  cluster("inline", bao_->Url(1),
                          std::string("      token: ") + kBaoInlineToken + "\n", creds, prefix) +
                  cluster("jwt", bao_->Url(1),
                          std::string("      jwtRole: ") + kJwtRole +
                              "\n      jwtTokenFile: " + work_.File("jwt") + "\n",
                          creds, prefix) +
                  cluster("badtoken", bao_->Url(1),
                          "      tokenFile: " + work_.File("wrong-token") + "\n", creds, prefix) +
                  cluster("badstore", bao_->Url(1), token_file, wrong_creds, prefix) +
                  cluster("stalled", stalling.Url(0), token_file, creds, prefix));
    json state = {{"clusters", json::object()}};
    for (const std::string& n : names) {
      state["clusters"]["sched/" + n] = {{"lastDecidedSlot", FormatRfc3339(slot - 1h)},
                                         {"schedule", "0 * * * *"}};
    }
    WriteText(run->state, state.dump());
    ASSERT_TRUE(run->process.Start({BuildBinary("bao-backup"), "--log-format", format,
                                    "--log-level", "debug", "schedule", "--config", run->config},
                                   Env({})));
    runs.push_back(std::move(run));
  }
  auto status = [](const Run& run, const std::string& name) {
    json j = json::parse(ReadText(run.state), nullptr, false);
    return j.is_object() ? j["clusters"].value("sched/" + name, json::object()) : json::object();
  };
  auto count = [&](const Run& run, const std::string& name, const char* outcome) {
    return status(run, name).value("attempts", json::object()).value(outcome, 0);
  };
  for (const auto& run : runs) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          return count(*run, "good", "success") > 0 && count(*run, "inline", "success") > 0 &&
                 count(*run, "jwt", "success") > 0 && count(*run, "badtoken", "failure") > 0 &&
                 count(*run, "badstore", "failure") > 0 &&
                 status(*run, "stalled").value("running", false);
        },
        90s))
        << run->format << ": " << ReadText(run->state) << "\n"
        << run->process.Stderr();
  }
  ASSERT_TRUE(WaitUntil([&] { return SnapshotRequests(stalling) >= 2; }, 30s));
  http::Client client;
  for (const auto& run : runs) {
    const std::string addr =
        json::parse(ReadText(run->state), nullptr, false).value("metricsAddress", "");
    ASSERT_FALSE(addr.empty()) << ReadText(run->state);
    for (const char* path : {"/metrics", "/healthz"}) {
      http::Request req;
      req.url = "http://" + addr + path;
      Result<http::Response> r = client.Do(req);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->status, 200) << path;
      EXPECT_TRUE(secrets_.NoneIn("scheduler [" + run->format + " log] GET " + path, r->body));
    }
  }
  for (const auto& run : runs) run->process.Signal(SIGTERM);
  for (const auto& run : runs) {
    const std::string label = "scheduler [" + run->format + " log]";
    EXPECT_EQ(run->process.Wait(30s), 0) << label << "\n" << run->process.Stderr();
    EXPECT_EQ(count(*run, "stalled", "cancelled"), 1) << ReadText(run->state);
    EXPECT_NE(status(*run, "badtoken").value("lastFailureReason", "").find("auth"),
              std::string::npos)
        << ReadText(run->state);
    EXPECT_TRUE(secrets_.NoneIn(label + " stdout", run->process.Stdout()));
    EXPECT_TRUE(secrets_.NoneIn(label + " stderr", run->process.Stderr()));
    EXPECT_TRUE(secrets_.NoneIn(label + " state file", ReadText(run->state)));
    RunResult st = Cli(
        {"--log-format", run->format, "schedule", "--config", run->config, "--status"}, Env({}));
    EXPECT_EQ(st.exit_code, 0) << Describe(st);
    EXPECT_TRUE(secrets_.NoneIn(label + " --status stdout", st.out));
    EXPECT_TRUE(secrets_.NoneIn(label + " --status stderr", st.err));
    for (const char* name : {"good", "inline", "jwt"}) {
      const std::string key = status(*run, name).value("lastBackupName", "");
      ASSERT_FALSE(key.empty()) << ReadText(run->state);
      RunResult head = minio.Aws({"s3api", "head-object", "--bucket", "backups", "--key", key});
      EXPECT_EQ(head.exit_code, 0) << head.err;
      EXPECT_TRUE(secrets_.NoneIn(label + " S3 metadata of " + key, head.out));
    }
  }
}

}  // namespace
}  // namespace bao::testing
