// Azure Blob Storage answers and settings: List Blobs XML (storage/azure_store.h
// azure::ParseBlobList), token answers (storage/token_cache.h ParseAccessTokenResponse, shared
// with GCS; the seeds here have IMDS's string lifetimes), RFC 1123 dates, connection strings,
// URL decoding. Input: the body, given to every parser.
//
// Properties: nothing crashes or throws; a listed size is the number the body gives and every
// listed name has the prefix; a token's lifetime lies within 0 s .. 10 years; an accepted date
// prints to a date that parses back to it; an accepted connection string has a key or SAS and
// an endpoint; UrlDecode undoes UrlEncode.
#include <chrono>
#include <cstdint>
#include <pugixml.hpp>
#include <string>
#include <string_view>

#include "check.h"
#include "common/numbers.h"
#include "http/client.h"
#include "storage/azure_auth.h"
#include "storage/azure_store.h"
#include "storage/token_cache.h"

namespace azure = bao::storage::azure;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);

  bao::Result<azure::BlobListPage> page = azure::ParseBlobList(body, "ns/", "fuzz");
  if (page.ok()) {
    pugi::xml_document doc;
    FUZZ_CHECK(doc.load_buffer(body.data(), body.size()));
    size_t i = 0;
    for (pugi::xml_node blob : doc.child("EnumerationResults").child("Blobs").children("Blob")) {
      std::string name = blob.child("Name").text().get();
      if (name.empty() || !name.starts_with("ns/")) continue;
      FUZZ_CHECK(i < page->blobs.size() && page->blobs[i].key == name);
      std::optional<uint64_t> want = bao::ParseInteger<uint64_t>(
          blob.child("Properties").child("Content-Length").text().get(), 0, UINT64_MAX);
      FUZZ_CHECK(want.has_value() && *want == page->blobs[i].size);
      ++i;
    }
    FUZZ_CHECK(i == page->blobs.size());
  } else {
    FUZZ_CHECK(page.status().code() == bao::Code::kInternal);
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

  bao::Result<bao::TimePoint> date = azure::ParseRfc1123(body);
  if (date.ok()) {
    bao::Result<bao::TimePoint> back = azure::ParseRfc1123(azure::FormatRfc1123(*date));
    FUZZ_CHECK(back.ok() && *back == *date);
  }

  bao::Result<azure::ConnectionString> cs = azure::ParseConnectionString(body);
  if (cs.ok()) {
    FUZZ_CHECK(!cs->account_key.empty() || !cs->sas.empty());
    FUZZ_CHECK(!cs->BlobEndpoint().empty());
  } else {
    FUZZ_CHECK(cs.status().code() == bao::Code::kInvalidArgument);
  }

  FUZZ_CHECK(azure::UrlDecode(bao::http::UrlEncode(body)) == body);
  (void)azure::UrlDecode(body);
  return 0;
}
