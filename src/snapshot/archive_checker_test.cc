#include "snapshot/archive_checker.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <random>
#include <vector>

#include "crypto/crypto.h"
#include "snapshot/testing/archive_builder.h"

namespace bao::snapshot {
namespace {

using testing::MakeSnapshot;
using testing::Members;
using testing::RandomBytes;
using testing::Snapshot;
using testing::WriteArchive;

Status CheckAll(const std::string& archive) {
  return CheckArchive(archive).status();
}

TEST(ArchiveCheckerTest, AcceptsAnIntactArchive) {
  Snapshot s = MakeSnapshot(300000);
  for (int format :
       {ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE, ARCHIVE_FORMAT_TAR_GNUTAR}) {
    Result<ArchiveReport> r = CheckArchive(WriteArchive(s.members(), format));
    ASSERT_TRUE(r.ok()) << "format " << format << ": " << r.status().ToString();
    EXPECT_EQ(r->meta.index, 1042u);
    EXPECT_EQ(r->meta.term, 3u);
    EXPECT_EQ(r->meta.size, 300000u);
    EXPECT_EQ(r->meta.id, "3-1042-1736910000000");
    EXPECT_EQ(r->member_sizes.at("state.bin"), 300000u);
  }
}

// The archive's own SHA-256 and state.bin's are computed side by side; neither may depend on
// how much of the other there is (random state.bin: about as many archive bytes as state.bin
// bytes; zeros: a few archive bytes for many state.bin bytes) or on the chunking.
TEST(ArchiveCheckerTest, HashesTheArchiveAndItsMembersWhateverTheirProportions) {
  Snapshot random = MakeSnapshot(700000);
  Snapshot zeros = MakeSnapshot(0);
  zeros.state = std::string(3 << 20, '\0');
  zeros.meta = R"({"Index":5,"Term":1,"Size":3145728})";
  zeros.sums = crypto::Sha256Hex(zeros.meta) + "  meta.json\n" + crypto::Sha256Hex(zeros.state) +
               "  state.bin\n";
  for (const Snapshot* s : {&random, &zeros}) {
    std::string archive = WriteArchive(s->members());
    for (size_t chunk : {size_t{333}, size_t{65536}, archive.size()}) {
      ArchiveChecker c;
      for (size_t i = 0; i < archive.size(); i += chunk) {
        ASSERT_TRUE(c.Update(std::string_view(archive).substr(i, chunk)).ok());
      }
      Result<ArchiveReport> r = c.Finish();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->sha256, crypto::Sha256Hex(archive)) << chunk;
      EXPECT_EQ(r->member_sizes.at("state.bin"), s->state.size());
    }
  }
  // A state.bin that does not match SHA256SUMS is still caught with the paired hashing.
  Snapshot bad = MakeSnapshot(100000);
  bad.state[99999] ^= 1;
  Status st = CheckAll(WriteArchive(bad.members()));
  EXPECT_EQ(st.code(), Code::kDataLoss);
  EXPECT_NE(st.message().find("state.bin"), std::string::npos) << st.message();
}

TEST(ArchiveCheckerTest, ResultDoesNotDependOnChunking) {
  Snapshot s = MakeSnapshot(20000);
  std::string archive = WriteArchive(s.members());
  for (size_t chunk : {1u, 7u, 512u, 4096u}) {
    ArchiveChecker c;
    for (size_t i = 0; i < archive.size(); i += chunk) {
      ASSERT_TRUE(c.Update(std::string_view(archive).substr(i, chunk)).ok());
    }
    Result<ArchiveReport> r = c.Finish();
    ASSERT_TRUE(r.ok()) << chunk << ": " << r.status().ToString();
    EXPECT_EQ(r->compressed_bytes, archive.size());
  }
}

TEST(ArchiveCheckerTest, RejectsEveryTruncation) {
  Snapshot s = MakeSnapshot(50000);
  std::string archive = WriteArchive(s.members());
  std::vector<size_t> cuts = {0, 1, 9, 10, 100, 511, 512, 513};
  for (size_t cut = 1000; cut < archive.size(); cut += 997) cuts.push_back(cut);
  for (size_t k = 1; k <= 12; ++k) cuts.push_back(archive.size() - k);
  for (size_t cut : cuts) {
    Status st = CheckAll(archive.substr(0, cut));
    EXPECT_EQ(st.code(), Code::kDataLoss) << "cut at " << cut;
  }
  EXPECT_NE(CheckAll(archive.substr(0, archive.size() / 2)).message().find("truncated"),
            std::string::npos);
}

TEST(ArchiveCheckerTest, RejectsAnyFlippedByteAfterTheGzipHeader) {
  // Bytes 4..9 of the gzip header (mtime, flags, OS) are covered by no checksum; the object's
  // recorded SHA-256 guards those. Everything after them must be caught here.
  Snapshot s = MakeSnapshot(20000);
  std::string archive = WriteArchive(s.members());
  for (size_t pos = 10; pos < archive.size();
       pos += (pos < 600 || pos + 64 > archive.size()) ? 1 : 13) {
    std::string damaged = archive;
    damaged[pos] = static_cast<char>(damaged[pos] ^ 0x01);
    EXPECT_EQ(CheckAll(damaged).code(), Code::kDataLoss) << "flipped byte " << pos;
  }
}

TEST(ArchiveCheckerTest, RejectsMissingMembers) {
  Snapshot s = MakeSnapshot(1000);
  for (size_t skip = 0; skip < 4; ++skip) {
    Members m = s.members();
    std::string name = m[skip].first;
    m.erase(m.begin() + static_cast<long>(skip));
    Status st = CheckAll(WriteArchive(m));
    EXPECT_EQ(st.code(), Code::kDataLoss) << name;
    EXPECT_NE(st.message().find(name == "state.bin" ? "state.bin" : name), std::string::npos)
        << st.message();
  }
}

TEST(ArchiveCheckerTest, RejectsExtraAndDuplicateMembers) {
  Snapshot s = MakeSnapshot(1000);
  Members extra = s.members();
  extra.push_back({"notes.txt", "hello"});
  Status st = CheckAll(WriteArchive(extra));
  EXPECT_EQ(st.code(), Code::kDataLoss);
  EXPECT_NE(st.message().find("unexpected member \"notes.txt\""), std::string::npos);

  Members dup = s.members();
  dup.insert(dup.begin() + 1, {"meta.json", s.meta});
  st = CheckAll(WriteArchive(dup));
  EXPECT_NE(st.message().find("more than once"), std::string::npos) << st.message();
}

TEST(ArchiveCheckerTest, RejectsSizeAndChecksumMismatches) {
  Snapshot wrong_size = MakeSnapshot(1000, 999);
  Status st = CheckAll(WriteArchive(wrong_size.members()));
  EXPECT_NE(st.message().find("state.bin holds 1000 bytes but meta.json announces 999"),
            std::string::npos)
      << st.message();

  Snapshot bad_sum = MakeSnapshot(1000);
  bad_sum.sums =
      std::string(64, 'a') + "  meta.json\n" + crypto::Sha256Hex(bad_sum.state) + "  state.bin\n";
  st = CheckAll(WriteArchive(bad_sum.members()));
  EXPECT_NE(st.message().find("SHA-256 of member \"meta.json\""), std::string::npos)
      << st.message();

  Snapshot unlisted = MakeSnapshot(1000);
  unlisted.sums = crypto::Sha256Hex(unlisted.meta) + "  meta.json\n";
  st = CheckAll(WriteArchive(unlisted.members()));
  EXPECT_NE(st.message().find("does not list state.bin"), std::string::npos) << st.message();

  Snapshot upper = MakeSnapshot(1000);
  std::string hex = crypto::Sha256Hex(upper.state);
  for (char& c : hex) c = static_cast<char>(std::toupper(c));
  upper.sums = crypto::Sha256Hex(upper.meta) + "  meta.json\n" + hex + " *state.bin\n";
  EXPECT_TRUE(CheckAll(WriteArchive(upper.members())).ok());
}

// Hand-made tar headers, for claims libarchive would not write.
std::string TarHeader(const std::string& name, const char size_field[12]) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), name.size());
  std::memcpy(h.data() + 100, "0000600", 8);
  std::memcpy(h.data() + 108, "0000000", 8);
  std::memcpy(h.data() + 116, "0000000", 8);
  std::memcpy(h.data() + 124, size_field, 12);
  std::memcpy(h.data() + 136, "00000000000", 12);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  return h;
}

std::string Gzip(const std::string& raw) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, raw.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(ArchiveCheckerTest, RejectsHugeClaimedSizes) {
  // meta.json claiming a terabyte is refused at its header, before any data.
  Status st = CheckAll(Gzip(TarHeader("meta.json", "17777777777")));
  EXPECT_NE(st.message().find("more than the"), std::string::npos) << st.message();

  // state.bin claiming 2^61 bytes (base-256) with a few bytes behind it: truncated.
  char base256[12] = {static_cast<char>(0x80), 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0};
  std::string raw = TarHeader("state.bin", base256) + std::string(1024, 'x');
  st = CheckAll(Gzip(raw));
  EXPECT_EQ(st.code(), Code::kDataLoss);
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();

  char overflow[12] = {
      static_cast<char>(0xbf), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f};
  st = CheckAll(Gzip(TarHeader("state.bin", overflow)));
  EXPECT_NE(st.message().find("malformed size"), std::string::npos) << st.message();
}

TEST(ArchiveCheckerTest, RejectsGarbage) {
  EXPECT_NE(CheckAll("").message().find("truncated"), std::string::npos);
  EXPECT_NE(CheckAll("{\"errors\":[\"permission denied\"]}").message().find("gzip"),
            std::string::npos);
  Snapshot s = MakeSnapshot(1000);
  std::string trailing = WriteArchive(s.members()) + "junk";
  EXPECT_NE(CheckAll(trailing).message().find("after the end of the gzip stream"),
            std::string::npos);
  EXPECT_NE(CheckAll(Gzip(std::string(2048, 'z'))).message().find("checksum"), std::string::npos);
}

TEST(ArchiveCheckerTest, ErrorsAreSticky) {
  ArchiveChecker c;
  EXPECT_FALSE(c.Update("not gzip at all").ok());
  EXPECT_FALSE(c.Update(WriteArchive(MakeSnapshot(10).members())).ok());
  EXPECT_FALSE(c.Finish().ok());
}

}  // namespace
}  // namespace bao::snapshot
