// Google Cloud Storage's JSON answers: object resources and listings
// (storage/gcs_store.h gcs_internal::ObjectInfoFromResource), the resumable-upload Range header
// (PersistedOffset), token answers (storage/token_cache.h ParseAccessTokenResponse, shared with
// Azure) and service-account key files (storage/google_auth.h).
// Input: the body, given to every parser.
//
// Properties: nothing crashes or throws; a size taken from a resource is the number it gives;
// a persisted offset is one past the last byte the header names; a token's lifetime lies
// within 0 s .. 10 years (it is added to clock readings).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "common/numbers.h"
#include "storage/gcs_store.h"
#include "storage/google_auth.h"
#include "storage/token_cache.h"

namespace gcs = bao::storage::gcs_internal;

namespace {

void CheckResource(const nlohmann::json& j) {
  bao::Result<bao::storage::ObjectInfo> info = gcs::ObjectInfoFromResource(j, "fuzz");
  if (!info.ok()) {
    FUZZ_CHECK(info.status().code() == bao::Code::kInternal);
    return;
  }
  const nlohmann::json& size = j["size"];
  if (size.is_string()) {
    std::optional<uint64_t> want =
        bao::ParseInteger<uint64_t>(size.get_ref<const std::string&>(), 0, UINT64_MAX);
    FUZZ_CHECK(want.has_value() && *want == info->size);
  } else {
    FUZZ_CHECK(size.is_number_unsigned() && size.get<uint64_t>() == info->size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);

  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    CheckResource(j);
    if (j.contains("items") && j["items"].is_array()) {
      for (const nlohmann::json& item : j["items"]) {
        if (item.is_object()) CheckResource(item);
      }
    }
  }

  bao::Result<uint64_t> offset = gcs::PersistedOffset(body);
  if (offset.ok() && !body.empty()) {
    std::optional<uint64_t> last = bao::ParseInteger<uint64_t>(body.substr(8), 0, UINT64_MAX);
    FUZZ_CHECK(last.has_value() && *offset == *last + 1);
  }

  bao::Result<bao::storage::AccessToken> token =
      bao::storage::ParseAccessTokenResponse(body, "fuzz");
  if (token.ok()) {
    FUZZ_CHECK(!token->token.empty());
    FUZZ_CHECK(token->expires_in.count() >= 0 &&
               token->expires_in.count() <= bao::storage::kMaxTokenLifetimeSeconds);
  } else {
    FUZZ_CHECK(token.status().code() == bao::Code::kInternal);
  }
  (void)bao::storage::ParseServiceAccountKey(body, "fuzz.json");
  return 0;
}
