// Where the S3 provider's AWS credentials come from, in this order:
//   1. the credentials directory (TargetConfig::credentials_dir): files accessKeyId and
//      secretAccessKey, optional sessionToken;
//   2. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN;
//   3. web identity (IRSA): the role from TargetConfig::role_arn or AWS_ROLE_ARN and the
//      token file AWS_WEB_IDENTITY_TOKEN_FILE, exchanged with STS AssumeRoleWithWebIdentity for
//      temporary credentials that are refreshed before they expire. The STS endpoint is
//      AWS_ENDPOINT_URL_STS when set (the AWS SDKs' variable), else
//      https://sts.<region>.amazonaws.com. AWS_ROLE_SESSION_NAME names the session.
// The credentials directory may also hold `region` and `caCert` (PEM), which apply whichever
// source provides the keys. Every secret read is registered with RegisterSecret().
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/context.h"
#include "common/status.h"
#include "common/time.h"
#include "storage/sigv4.h"
#include "storage/target.h"

namespace bao::storage {

// Supplies credentials for signing. Thread-safe.
class AwsCredentialsProvider {
 public:
  virtual ~AwsCredentialsProvider() = default;
  // The credentials to sign with now. Temporary credentials are fetched on the first call and
  // renewed when they expire within five minutes; when renewal fails while the current ones are
  // still valid, those are returned (and the failure logged). Errors: kUnauthenticated
  // (Reason::kUnauthenticated) when the identity provider refuses; kUnavailable when it cannot
  // be reached after the retries; kInvalidArgument (Stage::kConfig) when the web identity token
  // file is missing or empty; kAborted / kDeadlineExceeded from `ctx`. Static credentials never
  // fail and never block.
  virtual Result<AwsCredentials> Get(const Context& ctx) = 0;
  // Where the credentials come from, for messages ("environment (AWS_ACCESS_KEY_ID)").
  virtual std::string Source() const = 0;
};

// Looks up an environment variable; nullopt when unset or empty.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

struct AwsSetup {
  std::shared_ptr<AwsCredentialsProvider> credentials;
  std::string region;  // from the credentials directory's `region` file; "" when absent
  std::string ca_pem;  // from the credentials directory's `caCert` file; "" when absent
};

// Resolves the chain above without network calls (web identity fetches on the first Get(); its
// token file must exist now). Errors are configuration errors (Stage::kConfig,
// kInvalidArgument) naming the missing piece: Reason::kNoCredentials when no source is
// configured at all, kInvalidValue when a source is half configured (accessKeyId without
// secretAccessKey, roleArn without a token file) or a file cannot be read, kNoCredentials when
// the web identity token file does not exist.
Result<AwsSetup> ResolveAwsCredentials(const TargetConfig& target, const EnvLookup& env,
                                       const Clock& clock = SystemClock());

// Parses an STS AssumeRoleWithWebIdentity answer (or its ErrorResponse: kUnauthenticated for
// 4xx, kUnavailable for 5xx, naming the STS error code). Registers the secrets it returns.
Result<AwsCredentials> ParseAssumeRoleWithWebIdentity(long http_status, std::string_view body,
                                                      const std::string& role_arn);

}  // namespace bao::storage
