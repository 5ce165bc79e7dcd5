#include "storage/gcs_store.h"

#include <gtest/gtest.h>

#include "crypto/crypto.h"

namespace bao::storage::gcs_internal {
namespace {

TEST(GcsChunkTest, ChunkSizeIsAMultipleOf256KiB) {
  EXPECT_EQ(ChunkSize(kDefaultPartSize), 10485760u);  // 40 * 256 KiB exactly
  EXPECT_EQ(ChunkSize(kMinPartSize), 5242880u);
  EXPECT_EQ(ChunkSize(5242880 + 262143), 5242880u);
  EXPECT_EQ(ChunkSize(5242880 + 262144), 5242880u + 262144u);
  EXPECT_EQ(ChunkSize(1), 262144u);
  EXPECT_EQ(ChunkSize(0), 262144u);
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
}

TEST(GcsChunkTest, ResolveEndpoint) {
  EXPECT_EQ(ResolveEndpoint("", ""), "https://storage.googleapis.com");
  EXPECT_EQ(ResolveEndpoint("", "127.0.0.1:4443"), "http://127.0.0.1:4443");
  EXPECT_EQ(ResolveEndpoint("", "http://127.0.0.1:4443/"), "http://127.0.0.1:4443");
  EXPECT_EQ(ResolveEndpoint("http://127.0.0.1:9/", "127.0.0.1:4443"), "http://127.0.0.1:9");
  EXPECT_EQ(ResolveEndpoint("gcs.internal:8443", ""), "https://gcs.internal:8443");
}

}  // namespace
}  // namespace bao::storage::gcs_internal
