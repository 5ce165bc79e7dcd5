// The executor under hostile or clumsy input: addresses that carry credentials, a leader that
// announces a weaker scheme, missing local files, a source that answers 5xx, SIGTERM during a
// stalled stream, progress in a Job's log. The real binary against the OpenBao test server
// (and, for the leader check, two small fake nodes).
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "cli_fixture.h"
#include "support/test_pki.h"

namespace bao::testing {
namespace {

class CliHardeningTest : public CliTest {
 protected:
  void StartServer(BaoTestServerOptions options = {}) {
    server_ = std::make_unique<BaoTestServer>(options);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(
        server_->AddToken(token_, {{"sys/storage/raft/snapshot", {"read"}}}).ok());
  }

  std::vector<std::string> Args(const std::string& addr, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"backup",      "--bao-addr", addr,  "--provider",
                                     "file",        "--bucket",   store_.path(),
                                     "--namespace", "ns1",        "--cluster",
                                     "bao",         "--leader-wait", "2s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  RunResult Backup(const std::string& addr, std::vector<std::string> extra = {}) {
    return Cli(Args(addr, std::move(extra)), {{"BAO_TOKEN", token_}});
  }

  const std::string token_ = "s.hardening-token-0123456789";
  std::unique_ptr<BaoTestServer> server_;
  TempDir store_;
};

TEST_F(CliHardeningTest, AddressWithUserInfoOrQueryIsAConfigErrorThatNeverEchoesIt) {
  for (const std::string addr : {"http://admin:hunter2-pass@127.0.0.1:1/",
                                 "http://127.0.0.1:1/?sig=hunter2-sig"}) {
    RunResult r = Backup(addr);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    nlohmann::json j = LastJson(r);
    EXPECT_EQ(j["stage"], "config") << j;
    EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
  }
  EXPECT_EQ(Files(store_.path()), std::vector<std::string>{}) << "nothing created";
}

TEST_F(CliHardeningTest, MissingCaFileIsExitOneBeforeAnyNetworkCall) {
  // The address is a port nobody listens on: a network attempt would be exit 3.
  RunResult r = Backup("https://127.0.0.1:" + std::to_string(FreePort()),
                       {"--bao-cacert", store_.File("no-such-ca.pem")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(LastJson(r).value("error", "").find("no-such-ca.pem"), std::string::npos) << r.out;
  EXPECT_EQ(LastJson(r)["stage"], "config");
}

TEST_F(CliHardeningTest, TransientSourceErrorsAreRetriedPersistentOnesFailAsSnapshotReads) {
  StartServer();
  ASSERT_TRUE(server_->SetFaults({{"fail_status", 503}, {"count", 2}}).ok());
  RunResult ok = Backup(server_->Url(0));
  ASSERT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_NE(ok.err.find("retrying"), std::string::npos) << ok.err;

  ASSERT_TRUE(server_->SetFaults({{"fail_status", 500}}).ok());
  RunResult bad = Backup(server_->Url(0));
  EXPECT_EQ(bad.exit_code, 4) << Describe(bad);
  nlohmann::json j = LastJson(bad);
  EXPECT_EQ(j["stage"], "snapshot") << j;
  EXPECT_EQ(j["httpStatus"], 500) << j;
  EXPECT_EQ(j["reason"], "ServerError") << j;
}

TEST_F(CliHardeningTest, SigtermEndsAStalledBackupWithTheCancellationCodeWithinTheGrace) {
  BaoTestServerOptions options;
  options.state_size = 8 << 20;
  StartServer(options);
  ASSERT_TRUE(server_->SetFaults({{"stall_after_bytes", 3000000}}).ok());
  Process p;
  std::vector<std::string> args = Args(server_->Url(0), {"--shutdown-grace", "5s"});
  args.insert(args.begin(), BuildBinary("bao-backup"));
  ASSERT_TRUE(p.Start(args, {{"BAO_TOKEN", token_}}));
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const std::string& f : Files(store_.path())) {
          if (f.find(".partial-") != std::string::npos) return true;
        }
        return false;
      },
      std::chrono::seconds(30)));
  auto signalled = std::chrono::steady_clock::now();
  p.Signal(SIGTERM);
  int code = p.Wait(std::chrono::seconds(30));
  auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_EQ(code, 7) << p.Stderr();
  EXPECT_LT(took, std::chrono::seconds(6));
  nlohmann::json j = nlohmann::json::parse(LastLine(p.Stdout()), nullptr, false);
  EXPECT_EQ(j["reason"], "Cancelled") << p.Stdout();
  EXPECT_EQ(j["exitCode"], 7);
  EXPECT_EQ(Files(store_.path()), std::vector<std::string>{});
}

TEST_F(CliHardeningTest, ProgressIsLoggedInJsonOutsideATerminal) {
  BaoTestServerOptions options;
  options.state_size = 8 << 20;
  StartServer(options);
  RunResult r = Cli({"--log-format", "json", "--progress-interval", "1ms", "backup",
                     "--bao-addr", server_->Url(0), "--provider", "file", "--bucket",
                     store_.path(), "--namespace", "ns1", "--cluster", "bao"},
                    {{"BAO_TOKEN", token_}});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  int lines = 0;
  size_t start = 0;
  while (start < r.err.size()) {
    size_t end = r.err.find('\n', start);
    if (end == std::string::npos) end = r.err.size();
    nlohmann::json line = nlohmann::json::parse(r.err.substr(start, end - start), nullptr, false);
    start = end + 1;
    if (!line.is_object() || line.value("msg", "") != "progress") continue;
    ++lines;
    EXPECT_EQ(line["operation"], "backup");
    EXPECT_TRUE(line.contains("bytes") && line.contains("mibPerSecond")) << line;
  }
  EXPECT_GT(lines, 0) << r.err;

  // verify knows the total.
  std::string key = LastJson(r).value("key", "");
  RunResult v = Cli({"--log-format", "json", "--progress-interval", "1ms", "verify", "--provider",
                     "file", "--bucket", store_.path(), "--key", key});
  ASSERT_EQ(v.exit_code, 0) << Describe(v);
  EXPECT_NE(v.err.find("\"total\""), std::string::npos) << v.err;
}

// A node reached over https that names an http leader: the token must not follow it.
TEST_F(CliHardeningTest, LeaderAnnouncedWithAWeakerSchemeIsRefused) {
  std::filesystem::create_directories(store_.File("pki"));
  Result<TestPkiFiles> pki = MakeTestPki(store_.File("pki"));
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  std::atomic<int> tokens_seen_in_clear{0};
  httplib::Server plain;
  plain.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response&) {
    if (req.has_header("X-Vault-Token")) ++tokens_seen_in_clear;
    return httplib::Server::HandlerResponse::Unhandled;
  });
  plain.Get("/v1/sys/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"initialized":true,"sealed":false,"standby":false})", "application/json");
  });
  plain.Get("/v1/sys/leader", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"ha_enabled":true,"is_self":true})", "application/json");
  });
  const int plain_port = plain.bind_to_any_port("127.0.0.1");
  ASSERT_GT(plain_port, 0);
  std::thread plain_thread([&] { plain.listen_after_bind(); });

  httplib::SSLServer tls(pki->cert_file.c_str(), pki->key_file.c_str());
  tls.Get("/v1/sys/health", [](const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_content(R"({"initialized":true,"sealed":false,"standby":true})", "application/json");
  });
  tls.Get("/v1/sys/leader", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(nlohmann::json{{"ha_enabled", true},
                                   {"is_self", false},
                                   {"leader_address",
                                    "http://127.0.0.1:" + std::to_string(plain_port)}}
                        .dump(),
                    "application/json");
  });
  const int tls_port = tls.bind_to_any_port("127.0.0.1");
  ASSERT_GT(tls_port, 0);
  std::thread tls_thread([&] { tls.listen_after_bind(); });

  RunResult r = Backup("https://127.0.0.1:" + std::to_string(tls_port),
                       {"--bao-cacert", pki->ca_file});
  plain.stop();
  tls.stop();
  plain_thread.join();
  tls_thread.join();
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_NE(LastJson(r).value("error", "").find("not https"), std::string::npos) << r.out;
  EXPECT_EQ(tokens_seen_in_clear.load(), 0);
  EXPECT_FALSE(std::filesystem::exists(store_.path() + "/ns1"));
}

}  // namespace
}  // namespace bao::testing
