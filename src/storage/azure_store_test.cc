#include "storage/azure_store.h"

#include <gtest/gtest.h>

#include <string>

#include "storage/azure_auth.h"

namespace bao::storage::azure {
namespace {

// A blob under an immutability policy is listed with its lock (list -o json shows it).
TEST(BlobListTest, ListsEachBlobsImmutabilityPolicy) {
  Result<BlobListPage> page = ParseBlobList(
      "<EnumerationResults><Blobs>"
      "<Blob><Name>a.snap</Name><Properties><Content-Length>1</Content-Length>"
      "<ImmutabilityPolicyUntilDate>Thu, 16 Jan 2025 03:00:00 GMT</ImmutabilityPolicyUntilDate>"
      "<ImmutabilityPolicyMode>Locked</ImmutabilityPolicyMode></Properties></Blob>"
      "<Blob><Name>b.snap</Name><Properties><Content-Length>1</Content-Length></Properties></Blob>"
      "</Blobs></EnumerationResults>",
      "", "listing");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->blobs.size(), 2u);
  EXPECT_EQ(page->blobs[0].lock_mode, "Locked");
  EXPECT_EQ(FormatRfc1123(page->blobs[0].locked_until), "Thu, 16 Jan 2025 03:00:00 GMT");
  EXPECT_TRUE(page->blobs[0].LockedAt(*ParseRfc3339("2025-01-16T02:59:59Z")));
  EXPECT_FALSE(page->blobs[0].LockedAt(*ParseRfc3339("2025-01-16T03:00:00Z")));
  EXPECT_EQ(page->blobs[1].lock_mode, "");
}

TEST(BlobListTest, ParsesBlobsUnderThePrefixAndTheMarker) {
  Result<BlobListPage> page = ParseBlobList(
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>"
      "<Blob><Name>ns/a.snap</Name><Properties><Last-Modified>Wed, 15 Jan 2025 03:00:00 GMT"
      "</Last-Modified><Content-Length>1234</Content-Length></Properties>"
      "<Metadata><SHA256>ab</SHA256></Metadata></Blob>"
      "<Blob><Name>other</Name><Properties><Content-Length>x</Content-Length></Properties></Blob>"
      "</Blobs><NextMarker>m1</NextMarker></EnumerationResults>",
      "ns/", "listing");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->blobs.size(), 1u);  // "other" is outside the prefix: skipped, not checked
  EXPECT_EQ(page->blobs[0].key, "ns/a.snap");
  EXPECT_EQ(page->blobs[0].size, 1234u);
  EXPECT_EQ(page->blobs[0].sha256, "ab");
  EXPECT_EQ(FormatRfc1123(page->blobs[0].modified), "Wed, 15 Jan 2025 03:00:00 GMT");
  EXPECT_EQ(page->next_marker, "m1");

  Result<BlobListPage> last =
      ParseBlobList("<EnumerationResults><Blobs/></EnumerationResults>", "", "listing");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->blobs.empty());
  EXPECT_EQ(last->next_marker, "");

  for (const char* body : {"not xml <", "<Other/>"}) {
    Result<BlobListPage> bad = ParseBlobList(body, "", "listing of c");
    ASSERT_FALSE(bad.ok()) << body;
    EXPECT_EQ(bad.status().code(), Code::kInternal);
    EXPECT_EQ(bad.status().reason(), Reason::kBadResponse);
    EXPECT_EQ(bad.status().stage(), Stage::kStorage);
    EXPECT_TRUE(bad.status().message().starts_with("listing of c: ")) << bad.status().message();
  }
}

// A listed size is a plain decimal number: no sign, no spaces, no trailing text, within 64 bits.
TEST(BlobListTest, ContentLengthMustBeADecimalNumber) {
  for (const char* size : {"-1", "+12", " 12", "12abc", "", "18446744073709551616"}) {
    Result<BlobListPage> page = ParseBlobList(
        std::string("<EnumerationResults><Blobs><Blob><Name>k</Name><Properties><Content-Length>") +
            size + "</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        "", "listing");
    EXPECT_FALSE(page.ok()) << size;
  }
  Result<BlobListPage> max = ParseBlobList(
      "<EnumerationResults><Blobs><Blob><Name>k</Name><Properties><Content-Length>"
      "18446744073709551615</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
      "", "listing");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->blobs[0].size, UINT64_MAX);
}

}  // namespace
}  // namespace bao::storage::azure
