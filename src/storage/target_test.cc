// The BackupTarget fields of encryption at rest and object lock: parsed, validated (each rule
// names the field and the fix) and written back under the same names.
#include "storage/target.h"

#include <gtest/gtest.h>

namespace bao::storage {
namespace {

using nlohmann::json;

Result<TargetConfig> Parse(const std::string& text) {
  return ParseTarget(json::parse(text), "spec.backup.target");
}

Status Check(const std::string& text) {
  Result<TargetConfig> t = Parse(text);
  if (!t.ok()) return t.status();
  return ValidateTarget(*t, "spec.backup.target");
}

TEST(TargetProtectionTest, ParsesEveryFieldAndWritesItBack) {
  Result<TargetConfig> s3 = Parse(R"({"provider":"s3","endpoint":"https://s3","bucket":"b",
      "sse":"aws:kms","kmsKeyId":"k1","objectLock":{"mode":"COMPLIANCE","retainDays":30}})");
  ASSERT_TRUE(s3.ok()) << s3.status().ToString();
  EXPECT_EQ(s3->sse, "aws:kms");
  EXPECT_EQ(s3->kms_key_id, "k1");
  EXPECT_EQ(s3->object_lock_mode, "COMPLIANCE");
  EXPECT_EQ(s3->object_lock_retain_days, 30);
  EXPECT_TRUE(ValidateTarget(*s3, "t").ok());
  json back = TargetToJson(*s3);
  EXPECT_EQ(back["sse"], "aws:kms");
  EXPECT_EQ(back["kmsKeyId"], "k1");
  EXPECT_EQ(back["objectLock"], (json{{"mode", "COMPLIANCE"}, {"retainDays", 30}}));
  Result<TargetConfig> again = ParseTarget(back, "t");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kms_key_id, "k1");

  Result<TargetConfig> gcs = Parse(R"({"provider":"gcs","bucket":"b",
      "gcs":{"kmsKeyName":"projects/p/locations/l/keyRings/r/cryptoKeys/k"}})");
  ASSERT_TRUE(gcs.ok());
  EXPECT_EQ(gcs->gcs_kms_key_name, "projects/p/locations/l/keyRings/r/cryptoKeys/k");
  EXPECT_EQ(TargetToJson(*gcs)["gcs"]["kmsKeyName"], gcs->gcs_kms_key_name);

  Result<TargetConfig> azure = Parse(R"({"provider":"azure","bucket":"c",
      "azure":{"storageAccount":"a","encryptionScope":"scope1"},
      "objectLock":{"mode":"Unlocked","retainDays":7}})");
  ASSERT_TRUE(azure.ok());
  EXPECT_EQ(azure->azure_encryption_scope, "scope1");
  EXPECT_TRUE(ValidateTarget(*azure, "t").ok());
  EXPECT_EQ(TargetToJson(*azure)["azure"]["encryptionScope"], "scope1");

  // Without the fields, nothing new appears in the JSON (Jobs of older targets unchanged).
  Result<TargetConfig> plain = Parse(R"({"provider":"s3","endpoint":"https://s3","bucket":"b"})");
  ASSERT_TRUE(plain.ok());
  json j = TargetToJson(*plain);
  EXPECT_FALSE(j.contains("sse"));
  EXPECT_FALSE(j.contains("kmsKeyId"));
  EXPECT_FALSE(j.contains("objectLock"));
}

TEST(TargetProtectionTest, EachMisuseNamesTheFieldAndTheFix) {
  struct Case {
    const char* target;
    const char* field;  // must appear in the message
    const char* fix;    // and so must this
  };
  const Case cases[] = {
      {R"({"provider":"gcs","bucket":"b","sse":"AES256"})", "spec.backup.target.sse",
       "gcs.kmsKeyName"},
      {R"({"provider":"azure","bucket":"b","azure":{"storageAccount":"a"},"sse":"AES256"})",
       "spec.backup.target.sse", "azure.encryptionScope"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b","sse":"aes256"})",
       "spec.backup.target.sse", "AES256 or aws:kms"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b","kmsKeyId":"k"})",
       "spec.backup.target.kmsKeyId", "sse: aws:kms"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b","sse":"AES256","kmsKeyId":"k"})",
       "spec.backup.target.kmsKeyId", "sse: aws:kms"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b","gcs":{"kmsKeyName":"k"}})",
       "spec.backup.target.gcs.kmsKeyName", "kmsKeyId"},
      {R"({"provider":"gcs","bucket":"b","azure":{"encryptionScope":"s"}})",
       "spec.backup.target.azure.encryptionScope", "only for the azure provider"},
      {R"({"provider":"file","bucket":"/x","objectLock":{"mode":"GOVERNANCE","retainDays":1}})",
       "spec.backup.target.objectLock", "use s3, gcs or azure"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b",
           "objectLock":{"mode":"governance","retainDays":1}})",
       "spec.backup.target.objectLock.mode", "GOVERNANCE or COMPLIANCE"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b",
           "objectLock":{"mode":"GOVERNANCE"}})",
       "spec.backup.target.objectLock.retainDays", "required with a mode"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b",
           "objectLock":{"retainDays":3}})",
       "spec.backup.target.objectLock.mode", "GOVERNANCE"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b",
           "objectLock":{"mode":"GOVERNANCE","retainDays":40000}})",
       "spec.backup.target.objectLock.retainDays", "1..36500"},
      {R"({"provider":"s3","endpoint":"https://s3","bucket":"b",
           "objectLock":{"mode":"GOVERNANCE","retainDays":1,"extra":1}})",
       "spec.backup.target.objectLock", "extra"},
  };
  for (const Case& c : cases) {
    Status st = Check(c.target);
    ASSERT_FALSE(st.ok()) << c.target;
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
    // (An unknown field is kInvalidArgument from the shared field check, without a stage.)
    if (std::string(c.fix) != "extra") {
      EXPECT_EQ(st.stage(), Stage::kConfig) << st.ToString();
    }
    EXPECT_NE(st.message().find(c.field), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(c.fix), std::string::npos) << st.message();
  }
}

TEST(TargetProtectionTest, LockModesMapBetweenProviderNames) {
  EXPECT_EQ(S3LockMode("GOVERNANCE"), "GOVERNANCE");
  EXPECT_EQ(S3LockMode("Unlocked"), "GOVERNANCE");
  EXPECT_EQ(S3LockMode("COMPLIANCE"), "COMPLIANCE");
  EXPECT_EQ(S3LockMode("Locked"), "COMPLIANCE");
  EXPECT_EQ(S3LockMode("locked"), "");
  EXPECT_EQ(UnlockedOrLocked("GOVERNANCE"), "Unlocked");
  EXPECT_EQ(UnlockedOrLocked("Locked"), "Locked");
  EXPECT_EQ(UnlockedOrLocked(""), "");
}

}  // namespace
}  // namespace bao::storage
