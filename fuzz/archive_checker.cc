// The streaming snapshot-archive checker (snapshot/archive_checker.h).
//
// Input: one mode byte, then the payload. Mode bit 0 clear: the payload is a tar that this
// harness gzips, so that mutations reach the tar and member logic instead of dying at the gzip
// CRC; bit 1 set also rewrites the checksum of every ustar header block, so that mutated
// headers get past the checksum. Bit 0 set: the payload is fed as the compressed stream itself
// (the gzip wrapper). The upper bits choose how the bytes are split into Update() calls.
//
// Properties: the answer does not depend on the split; the first error is final; an accepted
// archive reports the length and SHA-256 of exactly the bytes fed, all four members, and
// state.bin with the size meta.json announces.
#include "snapshot/archive_checker.h"

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "check.h"
#include "crypto/crypto.h"

namespace {

using bao::snapshot::ArchiveChecker;
using bao::snapshot::ArchiveReport;

std::string Gzip(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) __builtin_trap();
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) __builtin_trap();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Sets the checksum field of every 512-byte block that carries the ustar magic.
void FixHeaderChecksums(std::string* tar) {
  for (size_t at = 0; at + 512 <= tar->size(); at += 512) {
    char* h = tar->data() + at;
    if (std::string_view(h + 257, 5) != "ustar") continue;
    std::fill(h + 148, h + 156, ' ');
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(h[i]);
    std::snprintf(h + 148, 8, "%06o", sum);  // six digits, NUL, then the space already there
  }
}

struct Outcome {
  bool ok = false;
  bao::Code code = bao::Code::kOk;
  ArchiveReport report;
};

Outcome Check(std::string_view archive, size_t chunk) {
  ArchiveChecker checker;
  bao::Status first;
  for (size_t at = 0; at < archive.size(); at += chunk) {
    bao::Status s = checker.Update(archive.substr(at, chunk));
    if (!s.ok() && first.ok()) first = s;
    // Once failed, every later call gives the same answer.
    if (!first.ok()) FUZZ_CHECK(s.code() == first.code() && s.message() == first.message());
  }
  bao::Result<ArchiveReport> r = checker.Finish();
  if (!first.ok()) {
    FUZZ_CHECK(!r.ok() && r.status().message() == first.message());
  }
  bao::Result<ArchiveReport> again = checker.Finish();
  FUZZ_CHECK(again.ok() == r.ok());
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == bao::Code::kDataLoss);
    FUZZ_CHECK(again.status().message() == r.status().message());
    return {false, r.status().code(), {}};
  }
  FUZZ_CHECK(checker.compressed_bytes() == archive.size());
  return {true, bao::Code::kOk, *r};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string payload(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string archive;
  if (mode & 1) {
    archive = payload;
  } else {
    if (mode & 2) FixHeaderChecksums(&payload);
    archive = Gzip(payload);
  }
  const size_t chunk = 1 + (mode >> 2) * 37;  // 1 .. 2332 bytes

  Outcome whole = Check(archive, archive.size() + 1);
  Outcome split = Check(archive, chunk);
  FUZZ_CHECK(whole.ok == split.ok);
  FUZZ_CHECK(whole.code == split.code);
  if (!whole.ok) return 0;

  const ArchiveReport& a = whole.report;
  const ArchiveReport& b = split.report;
  FUZZ_CHECK(a.sha256 == bao::crypto::Sha256Hex(archive));
  FUZZ_CHECK(a.sha256 == b.sha256);
  FUZZ_CHECK(a.compressed_bytes == archive.size() && b.compressed_bytes == archive.size());
  FUZZ_CHECK(a.uncompressed_bytes == b.uncompressed_bytes);
  FUZZ_CHECK(a.member_sizes == b.member_sizes);
  FUZZ_CHECK(a.meta.id == b.meta.id && a.meta.index == b.meta.index && a.meta.term == b.meta.term &&
             a.meta.size == b.meta.size);
  FUZZ_CHECK(a.member_sizes.size() == 4);
  for (const char* member : {"meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"}) {
    FUZZ_CHECK(a.member_sizes.contains(member));
  }
  FUZZ_CHECK(a.member_sizes.at("state.bin") == a.meta.size);
  if (!(mode & 1)) FUZZ_CHECK(a.uncompressed_bytes == payload.size());
  return 0;
}
