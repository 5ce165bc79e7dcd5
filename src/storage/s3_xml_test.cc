#include "storage/s3_xml.h"

#include <gtest/gtest.h>

namespace bao::storage::s3 {
namespace {

const RequestContext kCtx{"PUT object \"a\"", "backups", "http://127.0.0.1:9000"};

TEST(S3Xml, ParsesListMultipartUploadsPages) {
  const char* body = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>backups</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>ns%2Fc%2Fb.snap</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>
  <EncodingType>url</EncodingType><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>ns/c/a+b.snap</Key><UploadId>id-1</UploadId>
    <Initiator><ID>x</ID></Initiator><StorageClass>STANDARD</StorageClass>
    <Initiated>2025-01-15T03:00:00.000Z</Initiated></Upload>
  <Upload><Key>ns/c/b.snap</Key><UploadId>id-2</UploadId>
    <Initiated>2025-01-16T04:05:06.789Z</Initiated></Upload>
</ListMultipartUploadsResult>)";
  Result<UploadsPage> page = ParseListMultipartUploads(body);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->uploads.size(), 2u);
  EXPECT_EQ(page->uploads[0].key, "ns/c/a b.snap");
  EXPECT_EQ(page->uploads[0].upload_id, "id-1");
  EXPECT_EQ(FormatRfc3339(page->uploads[0].initiated), "2025-01-15T03:00:00Z");
  EXPECT_EQ(page->uploads[1].key, "ns/c/b.snap");
  EXPECT_EQ(FormatRfc3339(page->uploads[1].initiated), "2025-01-16T04:05:06Z");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_key_marker, "ns/c/b.snap");
  EXPECT_EQ(page->next_upload_id_marker, "id-2");

  Result<UploadsPage> empty = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
      "</ListMultipartUploadsResult>");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->uploads.empty());
  EXPECT_FALSE(empty->truncated);

  // An upload without a start time is not guessed at; neither is an unreadable body.
  Result<UploadsPage> no_time = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>i</UploadId></Upload>"
      "</ListMultipartUploadsResult>");
  EXPECT_EQ(no_time.status().reason(), Reason::kBadResponse);
  EXPECT_EQ(ParseListMultipartUploads("<Error/>").status().reason(), Reason::kBadResponse);
  EXPECT_EQ(ParseListMultipartUploads("<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                                      "</ListMultipartUploadsResult>")
                .status()
                .reason(),
            Reason::kBadResponse);
}

TEST(S3Xml, ParsesListObjectsV2PageWithUrlEncodedKeys) {
  const char* body = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>backups</Name><Prefix>ns%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>ns/a+b%2Bc.snap</Key><LastModified>2025-01-15T03:00:00.000Z</LastModified>
    <ETag>"abc"</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>ns/z.snap</Key><LastModified>2025-01-16T03:00:00.000Z</LastModified>
    <Size>0</Size></Contents>
</ListBucketResult>)";
  Result<ListPage> page = ParseListObjectsV2(body);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "ns/a b+c.snap");
  EXPECT_EQ(page->objects[0].size, 1234u);
  EXPECT_EQ(FormatRfc3339(page->objects[0].modified), "2025-01-15T03:00:00Z");
  EXPECT_EQ(page->objects[1].key, "ns/z.snap");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, ListWithoutEncodingKeepsKeysAndRejectsGarbage) {
  Result<ListPage> page = ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+b</Key>"
      "<Size>1</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->objects[0].key, "a+b");
  EXPECT_FALSE(page->truncated);
  EXPECT_FALSE(ParseListObjectsV2("not xml <").ok());
  EXPECT_FALSE(ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                  "</ListBucketResult>")
                   .ok());  // truncated without a token would loop forever
  // A size is a plain decimal number within 64 bits: no sign, spaces or trailing text.
  for (const char* size : {"-1", "+12", "12abc", " 12", "", "18446744073709551616"}) {
    Result<ListPage> bad =
        ParseListObjectsV2(std::string("<ListBucketResult><Contents><Key>k</Key><Size>") + size +
                           "</Size></Contents></ListBucketResult>");
    ASSERT_FALSE(bad.ok()) << size;
    EXPECT_EQ(bad.status().reason(), Reason::kBadResponse) << size;
  }
  EXPECT_FALSE(
      ParseListObjectsV2("<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>")
          .ok());
}

TEST(S3Xml, ParsesInitiateAndBuildsComplete) {
  Result<std::string> id = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
      "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "VXBsb2FkIElE");
  EXPECT_FALSE(ParseInitiateMultipartUpload("<Error><Code>x</Code></Error>").ok());
  EXPECT_EQ(CompleteMultipartUploadBody({"\"e1\"", "\"e2\""}),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;"
            "</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
  EXPECT_EQ(CompleteMultipartUploadBody({"e1"}, {"yZRlqg=="}),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e1</ETag>"
            "<ChecksumCRC32C>yZRlqg==</ChecksumCRC32C></Part></CompleteMultipartUpload>");
}

TEST(S3Xml, CompleteWithErrorInside200IsAnError) {
  Result<std::string> ok = ParseCompleteOrCopyResult(
      "<CompleteMultipartUploadResult><ETag>\"x-3\"</ETag></CompleteMultipartUploadResult>", kCtx);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "\"x-3\"");
  Result<std::string> internal = ParseCompleteOrCopyResult(
      "<Error><Code>InternalError</Code><Message>We encountered an internal error."
      "</Message></Error>",
      kCtx);
  EXPECT_EQ(internal.status().code(), Code::kUnavailable);
  Result<std::string> bad = ParseCompleteOrCopyResult(
      "<Error><Code>InvalidPart</Code><Message>One or more parts could not be found"
      "</Message></Error>",
      kCtx);
  EXPECT_EQ(bad.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find("InvalidPart"), std::string::npos);
}

TEST(S3Xml, MapsErrorsToCodesInPlainWords) {
  auto map = [](long status, const std::string& code) {
    return MapError(status, "<Error><Code>" + code + "</Code><Message>m</Message></Error>", kCtx);
  };
  Status sig = map(403, "SignatureDoesNotMatch");
  EXPECT_EQ(sig.code(), Code::kUnauthenticated);
  EXPECT_NE(sig.message().find("S3 rejected the credentials"), std::string::npos);
  EXPECT_EQ(map(403, "InvalidAccessKeyId").code(), Code::kUnauthenticated);
  EXPECT_EQ(map(403, "InvalidTokenId").code(), Code::kUnauthenticated);  // MinIO
  EXPECT_EQ(map(403, "AccessDenied").code(), Code::kPermissionDenied);
  Status bucket = map(404, "NoSuchBucket");
  EXPECT_EQ(bucket.code(), Code::kNotFound);
  EXPECT_NE(bucket.message().find("S3 bucket \"backups\" does not exist at "
                                  "http://127.0.0.1:9000"),
            std::string::npos)
      << bucket.message();
  EXPECT_EQ(map(503, "SlowDown").code(), Code::kUnavailable);
  EXPECT_EQ(map(500, "InternalError").code(), Code::kUnavailable);
  EXPECT_EQ(map(400, "RequestTimeout").code(), Code::kUnavailable);
  EXPECT_EQ(map(400, "XAmzContentSHA256Mismatch").code(), Code::kUnavailable);
  EXPECT_EQ(map(400, "XAmzContentChecksumMismatch").code(), Code::kUnavailable);  // MinIO
  EXPECT_EQ(map(400, "BadDigest").code(), Code::kUnavailable);  // AWS, CRC or MD5 mismatch
  EXPECT_EQ(map(400, "AuthorizationHeaderMalformed").code(), Code::kFailedPrecondition);
  EXPECT_EQ(MapError(429, "", kCtx).code(), Code::kUnavailable);
  EXPECT_EQ(MapError(404, "", kCtx).code(), Code::kNotFound);  // HEAD: no body
  EXPECT_EQ(MapError(403, "", kCtx).code(), Code::kPermissionDenied);
}

TEST(S3Xml, DeleteObjectsBodyAndErrors) {
  EXPECT_EQ(DeleteObjectsBody({"a&b", "c"}),
            "<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key>"
            "</Object></Delete>");
  // An XML parser reads a raw CR as a line feed (XML 1.0 2.11): the request would name
  // another key, or another ETag.
  EXPECT_EQ(DeleteObjectsBody({"a\rb"}),
            "<Delete><Quiet>true</Quiet><Object><Key>a&#13;b</Key></Object></Delete>");
  EXPECT_NE(CompleteMultipartUploadBody({"\"e\r1\""}).find("<ETag>&quot;e&#13;1&quot;</ETag>"),
            std::string::npos);
  Result<std::vector<std::string>> none = ParseDeleteObjectsErrors("<DeleteResult/>");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  Result<std::vector<std::string>> some = ParseDeleteObjectsErrors(
      "<DeleteResult><Error><Key>k</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
      "</DeleteResult>");
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 1u);
  EXPECT_EQ((*some)[0], "k: AccessDenied no");
}

TEST(S3Xml, HttpDatesAndUrlDecoding) {
  Result<TimePoint> t = ParseHttpDate("Wed, 15 Jan 2025 03:00:00 GMT");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatRfc3339(*t), "2025-01-15T03:00:00Z");
  EXPECT_FALSE(ParseHttpDate("yesterday").ok());
  // strptime takes years up to 9999, beyond what a TimePoint holds (undefined behaviour).
  EXPECT_FALSE(ParseHttpDate("Fri, 31 Dec 9999 23:59:59 GMT").ok());
  EXPECT_FALSE(ParseHttpDate("Sat, 01 Jan 1000 00:00:00 GMT").ok());
  EXPECT_FALSE(ParseHttpDate("Tue, 31 Dec 2261 23:59:60 GMT").ok());  // into 2262
  Result<TimePoint> last = ParseHttpDate("Tue, 31 Dec 2261 23:59:59 GMT");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(FormatRfc3339(*last), "2261-12-31T23:59:59Z");
  EXPECT_EQ(UrlDecode("a%2Fb+c%zz%4"), "a/b c%zz%4");
}

}  // namespace
}  // namespace bao::storage::s3
