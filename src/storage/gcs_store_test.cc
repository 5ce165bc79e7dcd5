#include "storage/gcs_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/crypto.h"

namespace bao::storage::gcs_internal {
namespace {

TEST(GcsChunkTest, ChunkSizeIsAMultipleOf256KiB) {
  EXPECT_EQ(ChunkSize(kDefaultPartSize, 3), 16777216u);  // the defaults: 16 MiB chunks
  EXPECT_EQ(ChunkSize(kDefaultPartSize + 262144, 3), 10485760u + 262144u);
  EXPECT_EQ(ChunkSize(kMinPartSize, 3), 5242880u);
  EXPECT_EQ(ChunkSize(5242880 + 262143, 3), 5242880u);
  EXPECT_EQ(ChunkSize(5242880 + 262144, 3), 5242880u + 262144u);
  EXPECT_EQ(ChunkSize(1, 3), 262144u);
  EXPECT_EQ(ChunkSize(0, 3), 262144u);
}

// Two chunks (one sent, one filling) stay within part_size x (concurrency + 1).
TEST(GcsChunkTest, TwoChunksFitThePartBudget) {
  EXPECT_EQ(ChunkSize(kDefaultPartSize, 10), 16777216u);
  EXPECT_EQ(ChunkSize(kDefaultPartSize, 2), kDefaultPartSize);  // 2 x 16 MiB > 30 MiB
  EXPECT_EQ(ChunkSize(kDefaultPartSize, 1), kDefaultPartSize);
  for (int concurrency = 1; concurrency <= 10; ++concurrency) {
    for (uint64_t part : {kMinPartSize, kDefaultPartSize, kDefaultPartSize + 262144}) {
      EXPECT_LE(2 * ChunkSize(part, concurrency), part * (concurrency + 1))
          << part << " x " << concurrency;
    }
  }
}

TEST(GcsChunkTest, ContentRange) {
  EXPECT_EQ(ContentRange(0, 262144, std::nullopt), "bytes 0-262143/*");
  EXPECT_EQ(ContentRange(262144, 262144, std::nullopt), "bytes 262144-524287/*");
  EXPECT_EQ(ContentRange(524288, 10, 524298), "bytes 524288-524297/524298");
  EXPECT_EQ(ContentRange(524288, 0, 524288), "bytes */524288");
  EXPECT_EQ(ContentRange(0, 0, 0), "bytes */0");
  EXPECT_EQ(ContentRange(7, 0, std::nullopt), "bytes */*");
}

TEST(GcsChunkTest, PersistedOffset) {
  EXPECT_EQ(*PersistedOffset(""), 0u);
  EXPECT_EQ(*PersistedOffset("bytes=0-0"), 1u);
  EXPECT_EQ(*PersistedOffset("bytes=0-262143"), 262144u);
  EXPECT_EQ(*PersistedOffset("bytes=0-10485759"), 10485760u);
  EXPECT_FALSE(PersistedOffset("bytes=5-9").ok());
  EXPECT_FALSE(PersistedOffset("bytes=0-").ok());
  EXPECT_FALSE(PersistedOffset("bytes=0-12x").ok());
  // One past the last byte must fit 64 bits; longer numbers must not wrap around.
  EXPECT_EQ(*PersistedOffset("bytes=0-18446744073709551614"), UINT64_MAX);
  EXPECT_FALSE(PersistedOffset("bytes=0-18446744073709551615").ok());
  EXPECT_FALSE(PersistedOffset("bytes=0-99999999999999999999999").ok());
  EXPECT_FALSE(PersistedOffset("bytes=0--1").ok());
  EXPECT_FALSE(PersistedOffset("bytes=0-+1").ok());
}

TEST(GcsResourceTest, SizeIsADecimalStringOrAnUnsignedNumber) {
  Result<ObjectInfo> info =
      ObjectInfoFromResource(nlohmann::json{{"name", "a/b"},
                                            {"size", "1234"},
                                            {"updated", "2025-01-15T03:00:00Z"},
                                            {"metadata", {{"sha256", "ab"}}}},
                             "x");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->key, "a/b");
  EXPECT_EQ(info->size, 1234u);
  EXPECT_EQ(info->sha256, "ab");
  EXPECT_EQ(FormatRfc3339(info->modified), "2025-01-15T03:00:00Z");
  EXPECT_EQ(ObjectInfoFromResource(nlohmann::json::parse(R"({"size":17})"), "x")->size, 17u);
  EXPECT_EQ(ObjectInfoFromResource(nlohmann::json{{"size", "18446744073709551615"}}, "x")->size,
            UINT64_MAX);
  for (const char* size : {"-1", " 12", "+12", "12abc", "", "18446744073709551616"}) {
    Result<ObjectInfo> bad = ObjectInfoFromResource(nlohmann::json{{"size", size}}, "upload");
    ASSERT_FALSE(bad.ok()) << size;
    EXPECT_EQ(bad.status().code(), Code::kInternal);
    EXPECT_EQ(bad.status().reason(), Reason::kBadResponse);
    EXPECT_TRUE(bad.status().message().starts_with("upload: ")) << bad.status().message();
  }
  EXPECT_FALSE(ObjectInfoFromResource(nlohmann::json{{"size", -1}}, "x").ok());
  EXPECT_FALSE(ObjectInfoFromResource(nlohmann::json{{"size", 1.5}}, "x").ok());
  EXPECT_FALSE(ObjectInfoFromResource(nlohmann::json{{"name", "a"}}, "x").ok());
  EXPECT_FALSE(ObjectInfoFromResource(nlohmann::json::array({1}), "x").ok());
  EXPECT_FALSE(ObjectInfoFromResource(nlohmann::json("size"), "x").ok());
}

TEST(GcsChunkTest, ResolveEndpoint) {
  EXPECT_EQ(ResolveEndpoint("", ""), "https://storage.googleapis.com");
  EXPECT_EQ(ResolveEndpoint("", "127.0.0.1:4443"), "http://127.0.0.1:4443");
  EXPECT_EQ(ResolveEndpoint("", "http://127.0.0.1:4443/"), "http://127.0.0.1:4443");
  EXPECT_EQ(ResolveEndpoint("http://127.0.0.1:9/", "127.0.0.1:4443"), "http://127.0.0.1:9");
  EXPECT_EQ(ResolveEndpoint("gcs.internal:8443", ""), "https://gcs.internal:8443");
}

// Without any credentials, on a machine that is not a Google Cloud VM, opening fails at once as
// a configuration error: no request to a metadata server that is not there, no retries.
TEST(GcsOpenTest, NoCredentialsAtAllIsAConfigurationErrorBeforeAnyRequest) {
  for (const char* v :
       {"STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"}) {
    unsetenv(v);
  }
  std::string dmi =
      std::filesystem::temp_directory_path() / ("bao-gcs-dmi-" + std::to_string(::getpid()));
  TargetConfig t;
  t.provider = "gcs";
  t.bucket = "backups";  // the default endpoint: storage.googleapis.com
  GcsOptions o;
  o.gce_product_name_file = dmi;  // absent: not a Google Cloud VM
  auto store = OpenGcsStore(t, o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store.status().stage(), Stage::kConfig);
  EXPECT_EQ(store.status().reason(), Reason::kNoCredentials);
  EXPECT_NE(store.status().message().find("no GCS credentials"), std::string::npos);

  { std::ofstream(dmi) << "Standard PC (Q35 + ICH9, 2009)\n"; }
  EXPECT_EQ(OpenGcsStore(t, o).status().reason(), Reason::kNoCredentials);
  { std::ofstream(dmi) << "Google Compute Engine\n"; }
  EXPECT_TRUE(OpenGcsStore(t, o).ok());  // the metadata server, at the first request
  std::filesystem::remove(dmi);
}

TEST(GcsOpenTest, AnUnreadableKeyFileIsAConfigurationErrorNamingIt) {
  TargetConfig t;
  t.provider = "gcs";
  t.bucket = "backups";
  setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json", 1);
  auto store = OpenGcsStore(t);
  unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store.status().stage(), Stage::kConfig);
  EXPECT_NE(store.status().message().find("/nonexistent/key.json"), std::string::npos)
      << store.status().message();
}

}  // namespace
}  // namespace bao::storage::gcs_internal
