#include "backup/spec.h"

#include <gtest/gtest.h>

namespace bao::backup {
namespace {

TEST(SpecTest, AnEndpointCarryingCredentialsIsRefusedWithoutEchoingThem) {
  for (const char* endpoint : {"https://s3.example.com", "http://127.0.0.1:9000/base",
                               "minio.local:9000", "minio.local:9000/p@th", ""}) {
    EXPECT_TRUE(CheckEndpointHasNoCredentials(endpoint, "spec.backup.target").ok()) << endpoint;
  }
  for (const char* endpoint : {
           "https://u:pass-x1@s3.example.com",
           "https://s3.example.com/?sig=pass-x1",
           "https://s3.example.com/#pass-x1",
           "u:pass-x1@minio.local:9000",
           // Only a leading scheme starts the authority: a "://" in the query or path does not
           // hide the query or the user-info before it.
           "minio.local:9000/?sig=pass-x1&next=https://x",
           "u:pass-x1@minio.local:9000/x://y",
       }) {
    Status s = CheckEndpointHasNoCredentials(endpoint, "spec.backup.target");
    ASSERT_FALSE(s.ok()) << endpoint;
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find("spec.backup.target.endpoint: "), std::string::npos);
    EXPECT_EQ(s.message().find("pass-x1"), std::string::npos) << s.message();
  }
}

TEST(SpecTest, ExtraTargetsAreParsedNamedAndChecked) {
  nlohmann::json backup = {
      {"schedule", "0 3 * * *"},
      {"target", {{"provider", "s3"}, {"endpoint", "https://s3.example.com"}, {"bucket", "b"}}},
      {"extraTargets",
       nlohmann::json::array(
           {{{"name", "dr"}, {"provider", "gcs"}, {"bucket", "g"}},
            {{"provider", "file"}, {"bucket", "/srv/copies"}, {"credentialsDir", "/etc/creds"}}})}};
  Result<BackupSpec> spec = ParseBackupSpec(backup, "spec.backup", true, true);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_EQ(spec->extra_targets.size(), 2u);
  EXPECT_EQ(spec->extra_targets[0].name, "dr");
  EXPECT_EQ(spec->extra_targets[0].target.provider, "gcs");
  EXPECT_EQ(spec->extra_targets[1].name, "extra-2");
  EXPECT_EQ(spec->extra_targets[1].target.credentials_dir, "/etc/creds");

  struct Case {
    nlohmann::json extra;
    std::string message;
  };
  const std::vector<Case> refused = {
      {{{"name", "primary"}, {"provider", "gcs"}, {"bucket", "g"}},
       "spec.backup.extraTargets[0].name: \"primary\" must be"},
      {{{"provider", "gcs"}}, "spec.backup.extraTargets[0].bucket"},
      {{{"bucket", "g"}}, "spec.backup.extraTargets[0].provider: required"},
      {{{"provider", "gcs"}, {"bucket", "g"}, {"bogus", 1}}, "bogus"},
      {{{"provider", "s3"},
        {"endpoint", "https://s3.example.com"},
        {"bucket", "b"},
        {"credentialsSecretRef", {{"name", "x"}, {"namespace", "other"}}}},
       "cross-namespace"},
  };
  for (const Case& c : refused) {
    nlohmann::json j = backup;
    j["extraTargets"] = nlohmann::json::array({c.extra});
    Result<BackupSpec> s = ParseBackupSpec(j, "spec.backup", true, true);
    ASSERT_FALSE(s.ok()) << c.extra.dump();
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
    EXPECT_NE(s.status().message().find(c.message), std::string::npos) << s.status().message();
  }
  nlohmann::json same = backup;
  same["extraTargets"][1]["name"] = "dr";
  Result<BackupSpec> dup = ParseBackupSpec(same, "spec.backup", true, true);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("extraTargets[1].name: \"dr\" is already the name"),
            std::string::npos)
      << dup.status().message();
  nlohmann::json many = backup;
  for (int i = 0; i < 3; ++i)
    many["extraTargets"].push_back({{"provider", "gcs"}, {"bucket", "g"}});
  Result<BackupSpec> too_many = ParseBackupSpec(many, "spec.backup", true, true);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("at most 4 extra targets"), std::string::npos);
}

}  // namespace
}  // namespace bao::backup
