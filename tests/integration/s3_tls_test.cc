// The S3 provider against MinIO serving HTTPS with a private CA: trusted through the
// credentials directory's caCert, refused in plain words without it, and accepted with
// insecureSkipVerify.
#include <gtest/gtest.h>

#include "crypto/crypto.h"
#include "storage/s3_store.h"
#include "support/minio.h"
#include "support/testing.h"

namespace bao::storage {
namespace {

using bao::testing::MinioServer;
using bao::testing::TempDir;

TEST(S3Tls, CustomCaSkipVerifyAndRefusal) {
  TempDir certs, creds;
  testing::RunResult gen = testing::Run(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
       "-keyout", certs.File("private.key"), "-out", certs.File("public.crt")});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  MinioServer minio;
  std::string error;
  ASSERT_TRUE(minio.Start(&error, certs.path())) << error;
  ASSERT_TRUE(minio.CreateBucket("tls-backups", &error)) << error;
  testing::WriteText(creds.File("accessKeyId"), minio.access_key());
  testing::WriteText(creds.File("secretAccessKey"), minio.secret_key());

  TargetConfig t;
  t.provider = "s3";
  t.endpoint = minio.endpoint();
  t.bucket = "tls-backups";
  t.use_path_style = true;
  t.credentials_dir = creds.path();
  S3Options options;
  options.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  std::string data = crypto::RandomBytes(1000);
  auto upload = [&](const std::string& key) -> Status {
    Result<std::unique_ptr<S3Store>> store = OpenS3StoreWithOptions(t, options);
    if (!store.ok()) return store.status();
    BAO_ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> w, (*store)->NewWriter(Context(), key));
    BAO_RETURN_IF_ERROR(w->Append(Context(), data));
    return w->Commit(Context(), CommitInfo{data.size(), crypto::Sha256Hex(data)}).status();
  };

  // The system trust store does not know this CA.
  Status refused = upload("a.snap");
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition) << refused.ToString();
  EXPECT_NE(refused.message().find("TLS problem with S3 endpoint " + minio.endpoint()),
            std::string::npos)
      << refused.message();

  testing::WriteText(creds.File("caCert"), testing::ReadText(certs.File("public.crt")));
  Status trusted = upload("b.snap");
  EXPECT_TRUE(trusted.ok()) << trusted.ToString();

  testing::WriteText(creds.File("caCert"), "");
  t.insecure_skip_verify = true;
  Status skipped = upload("c.snap");
  EXPECT_TRUE(skipped.ok()) << skipped.ToString();

  testing::RunResult ls = minio.Aws({"s3", "ls", "s3://tls-backups/"});
  EXPECT_EQ(ls.out.find("a.snap"), std::string::npos);
  EXPECT_NE(ls.out.find("b.snap"), std::string::npos) << ls.out << ls.err;
  EXPECT_NE(ls.out.find("c.snap"), std::string::npos);
}

}  // namespace
}  // namespace bao::storage
