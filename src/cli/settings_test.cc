#include "cli/settings.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

namespace bao::cli {
namespace {

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

class SettingsTest : public ::testing::Test {
 protected:
  std::string WriteConfig(const std::string& yaml) {
    char tmpl[] = "/tmp/bao-settings-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path_ = tmpl;
    std::ofstream(path_) << yaml;
    return path_;
  }
  void TearDown() override {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  std::string path_;
};

TEST_F(SettingsTest, DefaultsToTheFileProvider) {
  Flags f;
  f.bucket = "/srv/backups";
  Result<Settings> s = ResolveSettings(f, MapEnv({}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->spec.target.provider, "file");
  EXPECT_EQ(s->spec.target.part_size, 10485760u);
  EXPECT_EQ(s->spec.target.concurrency, 3);
  EXPECT_EQ(s->ns, "default");
  EXPECT_EQ(s->auth.jwt_mount, "jwt-operator");
  EXPECT_EQ(s->auth.jwt_token_file, "/var/run/secrets/tokens/openbao-token");
  EXPECT_TRUE(ValidateTargetSettings(*s).ok());
}

// A password or a signature in the endpoint is refused wherever the endpoint comes from (the
// flag, a --config file), for every provider, and the message does not repeat it.
TEST_F(SettingsTest, EndpointWithCredentialsIsRefusedWithoutBeingRepeated) {
  for (const char* provider : {"s3", "gcs", "azure"}) {
    for (const char* endpoint :
         {"http://user:pass-x1@127.0.0.1:9000", "user:pass-x1@h:1",
          "https://h.example.com/acct?sv=1&sig=pass-x1", "https://h.example.com/#pass-x1"}) {
      Flags f;
      f.provider = provider;
      f.bucket = "b";
      f.storage_account = "acct";
      f.endpoint = endpoint;
      Result<Settings> s = ResolveSettings(f, MapEnv({}));
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      Status v = ValidateTargetSettings(*s);
      EXPECT_FALSE(v.ok()) << provider << " " << endpoint;
      EXPECT_NE(v.message().find("target.endpoint: must be"), std::string::npos) << v.message();
      EXPECT_EQ(v.message().find("pass-x1"), std::string::npos) << v.message();

      Flags c;
      c.config_file = WriteConfig(std::string("target:\n  provider: ") + provider +
                                  "\n  bucket: b\n  endpoint: \"" + endpoint +
                                  "\"\n  azure: {storageAccount: acct}\n");
      Result<Settings> from_config = ResolveSettings(c, MapEnv({}));
      ASSERT_FALSE(from_config.ok()) << provider << " " << endpoint;
      EXPECT_NE(from_config.status().message().find("config.target.endpoint: must be"),
                std::string::npos)
          << from_config.status().message();
      EXPECT_EQ(from_config.status().message().find("pass-x1"), std::string::npos)
          << from_config.status().message();
    }
  }
  Flags ok;
  ok.provider = "s3";
  ok.bucket = "b";
  ok.endpoint = "https://s3.eu-west-1.amazonaws.com/base/path";
  Result<Settings> s = ResolveSettings(ok, MapEnv({}));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(ValidateTargetSettings(*s).ok());
}

TEST_F(SettingsTest, FlagsBeatEnvironmentBeatsConfig) {
  Flags f;
  f.config_file = WriteConfig(R"(
schedule: "0 3 * * *"
jwtAuthRole: from-config
target:
  endpoint: http://config:9000
  bucket: config-bucket
  pathPrefix: /cfg/
  partSize: 6291456
  concurrency: 4
  usePathStyle: true
retention:
  maxCount: 7
  maxAge: 168h
)");
  // The config names no provider: the contract's default (s3) applies.
  Result<Settings> from_config = ResolveSettings(f, MapEnv({}));
  ASSERT_TRUE(from_config.ok()) << from_config.status().ToString();
  EXPECT_EQ(from_config->spec.target.provider, "s3");
  EXPECT_EQ(from_config->spec.target.bucket, "config-bucket");
  EXPECT_EQ(from_config->spec.target.path_prefix, "cfg");
  EXPECT_EQ(from_config->spec.target.part_size, 6291456u);
  EXPECT_TRUE(from_config->spec.target.use_path_style);
  EXPECT_EQ(from_config->spec.retention.max_count, 7);
  EXPECT_EQ(from_config->spec.retention.max_age, std::chrono::hours(168));
  EXPECT_EQ(from_config->auth.jwt_role, "from-config");

  f.bucket = "flag-bucket";
  f.concurrency = 9;
  f.jwt_role = "from-flag";
  f.max_count = 2;
  f.bao_addr = {"http://a:8200,http://b:8200", "http://c:8200"};
  Result<Settings> s =
      ResolveSettings(f, MapEnv({{"BAO_ADDR", "http://env:8200"}, {"BAO_SKIP_VERIFY", "true"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->spec.target.bucket, "flag-bucket");
  EXPECT_EQ(s->spec.target.concurrency, 9);
  EXPECT_EQ(s->spec.target.endpoint, "http://config:9000");
  EXPECT_EQ(s->auth.jwt_role, "from-flag");
  EXPECT_EQ(s->spec.retention.max_count, 2);
  EXPECT_EQ(s->connection.addresses,
            (std::vector<std::string>{"http://a:8200", "http://b:8200", "http://c:8200"}));
  EXPECT_TRUE(s->connection.tls.insecure_skip_verify);

  Flags no_addr_flag;
  Result<Settings> env_only =
      ResolveSettings(no_addr_flag, MapEnv({{"BAO_ADDR", "http://env:8200"}}));
  ASSERT_TRUE(env_only.ok());
  EXPECT_EQ(env_only->connection.addresses, std::vector<std::string>{"http://env:8200"});
}

// The protection flags set the target fields of the same names, and the target's rules apply.
TEST_F(SettingsTest, ProtectionFlagsSetTheTargetFields) {
  Flags f{};
  f.provider = "s3";
  f.endpoint = "https://s3.example.com";
  f.bucket = "b";
  f.sse = "aws:kms";
  f.kms_key_id = "key-1";
  f.object_lock_mode = "COMPLIANCE";
  f.object_lock_retain_days = 7;
  Result<Settings> s = ResolveSettings(f, MapEnv({}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->spec.target.sse, "aws:kms");
  EXPECT_EQ(s->spec.target.kms_key_id, "key-1");
  EXPECT_EQ(s->spec.target.object_lock_mode, "COMPLIANCE");
  EXPECT_EQ(s->spec.target.object_lock_retain_days, 7);
  EXPECT_TRUE(ValidateTargetSettings(*s).ok());

  f.sse = "AES256";  // --kms-key-id needs aws:kms
  s = ResolveSettings(f, MapEnv({}));
  ASSERT_TRUE(s.ok());
  Status bad = ValidateTargetSettings(*s);
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("kmsKeyId"), std::string::npos) << bad.message();

  Flags g{};
  g.provider = "gcs";
  g.bucket = "b";
  g.kms_key_name = "projects/p/locations/l/keyRings/r/cryptoKeys/k";
  s = ResolveSettings(g, MapEnv({}));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->spec.target.gcs_kms_key_name, *g.kms_key_name);
  g.provider = "azure";
  g.kms_key_name.reset();
  g.storage_account = "acct";
  g.encryption_scope = "scope1";
  s = ResolveSettings(g, MapEnv({}));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->spec.target.azure_encryption_scope, "scope1");
  EXPECT_TRUE(ValidateTargetSettings(*s).ok());
}

TEST_F(SettingsTest, JwtRoleWinsOverTokenPerContract) {
  Flags f;
  f.bao_token.emplace("s.static-token-value");
  Result<Settings> token_only = ResolveSettings(f, MapEnv({}));
  ASSERT_TRUE(token_only.ok());
  EXPECT_EQ(token_only->auth.token, "s.static-token-value");
  f.jwt_role = "backup";
  Result<Settings> both = ResolveSettings(f, MapEnv({}));
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->auth.token.empty());
  EXPECT_EQ(both->auth.jwt_role, "backup");
}

TEST_F(SettingsTest, RejectsBadInputNamingTheCulprit) {
  Flags f;
  f.bao_token_file = "/nonexistent/token";
  Result<Settings> s = ResolveSettings(f, MapEnv({}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/nonexistent/token"), std::string::npos);

  Flags bad_env;
  s = ResolveSettings(bad_env, MapEnv({{"BAO_SKIP_VERIFY", "maybe"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("BAO_SKIP_VERIFY"), std::string::npos);

  Flags bad_age;
  bad_age.max_age = "1 week";
  s = ResolveSettings(bad_age, MapEnv({}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--max-age"), std::string::npos);

  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"target: {partSize: big}", "config.target.partSize"},
           {"retention: {maxCount: -1}", "config.retention.maxCount"},
           {"retention: {maxAge: forever}", "config.retention.maxAge"},
           {"target: {credentialsSecretRef: {name: s, namespace: other}}", "cross-namespace"},
           {"schedule: [1, 2]", "config.schedule"},
           {"target: {bucket: b\n  oops", "YAML syntax error"}}) {
    Flags c;
    c.config_file = WriteConfig(yaml);
    Result<Settings> r = ResolveSettings(c, MapEnv({}));
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  }
}

TEST_F(SettingsTest, ValidatesTheTarget) {
  struct Case {
    Flags flags;
    std::string expect;
  };
  std::vector<Case> cases(5);
  cases[0].expect = "target.bucket: required";
  cases[1].flags.provider = "s3";
  cases[1].flags.bucket = "b";
  cases[1].expect = "target.endpoint: required";
  cases[2].flags.bucket = "/tmp/x";
  cases[2].flags.part_size = 1024;
  cases[2].expect = "below the minimum of 5242880";
  cases[3].flags.bucket = "/tmp/x";
  cases[3].flags.concurrency = 11;
  cases[3].expect = "outside 1..10";
  cases[4].flags.provider = "ftp";
  cases[4].flags.bucket = "b";
  cases[4].expect = "\"ftp\" is not one of";
  for (const Case& c : cases) {
    Result<Settings> s = ResolveSettings(c.flags, MapEnv({}));
    ASSERT_TRUE(s.ok());
    Status v = ValidateTargetSettings(*s);
    ASSERT_FALSE(v.ok()) << c.expect;
    EXPECT_NE(v.message().find(c.expect), std::string::npos) << v.message();
  }
}

// Resolves a file target with the two stall flags as given (nullopt: not given).
Result<Settings> WithStallFlags(const char* storage, const char* source) {
  Flags f;
  f.bucket = "/srv/backups";
  if (storage != nullptr) f.storage_stall_timeout = storage;
  if (source != nullptr) f.source_stall_timeout = source;
  return ResolveSettings(f, MapEnv({}));
}

TEST_F(SettingsTest, StallTimeouts) {
  Result<Settings> s = WithStallFlags(nullptr, nullptr);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->store.stall_time, storage::kDefaultStallTime);
  EXPECT_EQ(s->connection.stall_timeout, std::chrono::seconds(60));

  s = WithStallFlags("3s", "2m");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->store.stall_time, std::chrono::seconds(3));
  EXPECT_EQ(s->connection.stall_timeout, std::chrono::minutes(2));
  s = WithStallFlags("1500ms", nullptr);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->store.stall_time, std::chrono::milliseconds(1500));

  // Below one second (0s would turn stall detection off) and malformed values are refused,
  // naming the flag.
  for (const char* bad : {"0s", "999ms", "-5s", "soon", ""}) {
    s = WithStallFlags(bad, nullptr);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_TRUE(s.status().message().starts_with("--storage-stall-timeout: "))
        << s.status().message();
  }
}

}  // namespace
}  // namespace bao::cli
