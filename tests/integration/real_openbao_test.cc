// `bao-backup backup` against real OpenBao 2.7.2 Raft clusters: least-privilege tokens through a
// standby, JWT auth on the jwt-operator mount, TLS, and a killed leader.
#include <chrono>

#include "real_openbao_fixture.h"
#include "support/test_pki.h"

namespace bao::testing {
namespace {

using nlohmann::json;

class RealOpenBao : public RealOpenBaoTest {};

TEST_F(RealOpenBao, BackupThroughStandbyWithReadOnlyToken) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->PutSecret("app", {{"password", "hunter2"}}).ok());
  ASSERT_TRUE(c->PutPolicy("snapshot-read", kSnapshotReadPolicy).ok());
  Result<std::string> token = c->CreateToken({"snapshot-read"});
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  // The token really is least-privilege: it cannot read secrets.
  Result<json> denied = c->GetSecret(0, "app", *token);
  ASSERT_FALSE(denied.ok());

  int active = c->ActiveNode();
  int standby = (active + 1) % c->size();
  RunResult r = Backup({c->Url(standby)}, *token);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = LastJson(r);
  EXPECT_EQ(j["leader"], c->Url(active));
  std::string path = ObjectPath(j["key"]);
  EXPECT_EQ(j["sha256"], FileSha256(path));
  EXPECT_EQ(j["size"].get<uint64_t>(), std::filesystem::file_size(path));
  EXPECT_EQ(ArchiveMembers(path), (std::vector<std::string>{"meta.json", "state.bin", "SHA256SUMS",
                                                            "SHA256SUMS.sealed"}));
  EXPECT_EQ(r.out.find(*token), std::string::npos);
  EXPECT_EQ(r.err.find(*token), std::string::npos);

  RunResult v = Cli({"verify", "--provider", "file", "--bucket", store_.path(), "--key", j["key"]});
  EXPECT_EQ(v.exit_code, 0) << Describe(v);
}

TEST_F(RealOpenBao, JwtLogin) {
  auto c = StartCluster({.nodes = 1});
  ASSERT_TRUE(c);
  Result<RsaKeyPair> keys = MakeRsaKeyPair();
  ASSERT_TRUE(keys.ok());
  ASSERT_TRUE(c->PutPolicy("snapshot-read", kSnapshotReadPolicy).ok());
  ASSERT_TRUE(c->EnableJwt("jwt-operator", keys->public_pem).ok());
  const std::string subject = "system:serviceaccount:ns:bao-backup-serviceaccount";
  ASSERT_TRUE(c->AddJwtRole("jwt-operator", "backup",
                            {{"bound_audiences", {"openbao-internal"}},
                             {"bound_subject", subject},
                             {"token_policies", {"snapshot-read"}},
                             {"token_ttl", "10m"}})
                  .ok());
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  struct Case {
    std::string name;
    json claims;
    int exit_code;
  };
  std::vector<Case> cases = {
      {"good", {{"aud", "openbao-internal"}, {"sub", subject}, {"exp", now + 600}}, 0},
      {"wrong audience", {{"aud", "someone-else"}, {"sub", subject}, {"exp", now + 600}}, 2},
      {"wrong subject",
       {{"aud", "openbao-internal"}, {"sub", "system:serviceaccount:ns:other"}, {"exp", now + 600}},
       2},
      {"expired", {{"aud", "openbao-internal"}, {"sub", subject}, {"exp", now - 600}}, 2},
  };
  for (Case& k : cases) {
    k.claims["iss"] = "https://kubernetes.default.svc";
    k.claims["iat"] = now - 700;
    k.claims["nbf"] = now - 700;
    Result<std::string> jwt = MakeJwt(keys->private_pem, k.claims);
    ASSERT_TRUE(jwt.ok());
    std::string jwt_file = store_.File("jwt-" + std::to_string(&k - cases.data()));
    WriteText(jwt_file, *jwt);
    RunResult r = Backup({c->Url(0)}, "", {"--jwt-role", "backup", "--jwt-token-file", jwt_file});
    EXPECT_EQ(r.exit_code, k.exit_code) << k.name << "\n" << Describe(r);
    if (k.exit_code != 0) {
      EXPECT_EQ(LastJson(r)["stage"], "auth") << k.name;
      EXPECT_NE(r.out.find("backup"), std::string::npos) << k.name << ": role not named";
    }
    EXPECT_EQ(r.out.find(*jwt), std::string::npos) << k.name;
    EXPECT_EQ(r.err.find(*jwt), std::string::npos) << k.name;
  }
}

TEST_F(RealOpenBao, TlsWithAndWithoutCa) {
  auto c = StartCluster({.nodes = 1, .tls = true});
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Url(0).starts_with("https://"));
  RunResult with_ca = Backup({c->Url(0)}, c->root_token(), {"--bao-cacert", c->ca_file()});
  EXPECT_EQ(with_ca.exit_code, 0) << Describe(with_ca);

  RunResult without = Backup({c->Url(0)}, c->root_token(), {"--leader-wait", "2s"});
  EXPECT_EQ(without.exit_code, 3) << Describe(without);
  EXPECT_NE(without.out.find("TLS verification failed"), std::string::npos) << without.out;
  EXPECT_EQ(Files(store_.path()).size(), 2u) << "only the first backup and its checksum";
}

TEST_F(RealOpenBao, BackupAfterLeaderKilled) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  int old_leader = c->ActiveNode();
  ASSERT_GE(old_leader, 0);
  c->Kill(old_leader);
  RunResult r = Backup(c->Urls(), c->root_token());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = LastJson(r);
  EXPECT_NE(j["leader"], c->Url(old_leader));
  int new_leader = c->ActiveNode();
  ASSERT_GE(new_leader, 0);
  EXPECT_EQ(j["leader"], c->Url(new_leader));
  EXPECT_EQ(j["sha256"], FileSha256(ObjectPath(j["key"])));
}

}  // namespace
}  // namespace bao::testing
