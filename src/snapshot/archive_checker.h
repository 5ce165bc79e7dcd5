// Checks an OpenBao Raft snapshot archive while it streams past, with bounded memory.
//
// The archive is a gzip-compressed tar holding meta.json, state.bin, SHA256SUMS and
// SHA256SUMS.sealed (see docs/snapshot-format.md). It is intact when the gzip stream is
// complete and its CRC-32 and length match, the tar structure is sound (header checksums,
// end-of-archive marker), each of the four members is present exactly once and nothing else
// is, every member listed in SHA256SUMS has the listed SHA-256, and state.bin has the size
// meta.json announces.
//
// The checker also computes the SHA-256 of the archive itself (the bytes fed to it), beside
// the members' ones: the archive's and state.bin's, the two large ones, advance together
// through crypto::Sha256Pair, which costs about one pass instead of two.
//
// Feed the compressed bytes in order with Update(), then call Finish(). The first problem
// found is final: it is returned by that call and by every later one, with a message that
// names it (offset, member, expected and actual values). Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/crypto.h"
#include "crypto/sha256_pair.h"

struct inflate_state;  // ISA-L

namespace bao::snapshot {

struct SnapshotMeta {
  std::string id;
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t size = 0;  // announced size of state.bin
};

struct ArchiveReport {
  SnapshotMeta meta;
  std::string sha256;  // of the archive: every byte fed to Update(), lower-case hex
  uint64_t compressed_bytes = 0;
  uint64_t uncompressed_bytes = 0;
  std::map<std::string, uint64_t> member_sizes;
};

class ArchiveChecker {
 public:
  ArchiveChecker();
  ~ArchiveChecker();
  ArchiveChecker(const ArchiveChecker&) = delete;
  ArchiveChecker& operator=(const ArchiveChecker&) = delete;

  // Consumes the next compressed bytes. kDataLoss at the first defect.
  Status Update(std::string_view compressed);

  // Declares the end of the input and checks that the archive was complete and consistent.
  // kDataLoss naming the defect (truncated, missing member, checksum mismatch, ...). Later
  // calls return the same answer.
  Result<ArchiveReport> Finish();

  // Bytes consumed so far.
  uint64_t compressed_bytes() const { return report_.compressed_bytes; }

 private:
  enum class TarState { kHeader, kData, kPadding, kEnd };
  struct Member {
    std::string name;
    uint64_t size = 0;
    uint64_t seen = 0;
    bool keep = false;  // small members are kept in memory for parsing
    std::string content;
    bool paired = false;  // hashed in lane 1 of hashes_ (state.bin) rather than by `sha`
    crypto::Sha256 sha;
  };

  Status Fail(Status s);
  Status FeedTar(std::string_view data);
  Status OnHeader();
  Status OnMemberEnd();
  Status CheckSums();

  std::unique_ptr<inflate_state> inflate_;  // ISA-L: gzip with CRC-32 and length checked
  // Lane 0: the archive's bytes; lane 1: state.bin's. pending_archive_ holds the archive bytes
  // the current inflate round consumed and that are not hashed yet, to go with state.bin's.
  crypto::Sha256Pair hashes_;
  std::string_view pending_archive_;
  bool state_bin_paired_ = false;
  bool gzip_done_ = false;
  Status error_;
  ArchiveReport report_;

  TarState tar_state_ = TarState::kHeader;
  std::array<char, 512> header_{};
  size_t header_fill_ = 0;
  uint64_t padding_left_ = 0;
  int zero_blocks_ = 0;
  // Pending PAX ('x') or GNU long-name ('L') overrides for the next header.
  std::string next_name_;
  bool next_size_set_ = false;
  uint64_t next_size_ = 0;
  std::unique_ptr<Member> member_;  // the member being read
  std::string meta_body_;           // metadata record being read ('x', 'g', 'L')
  uint64_t record_size_ = 0;        // its size
  char meta_type_ = 0;
  std::map<std::string, std::string> digests_;  // member name -> hex SHA-256 computed
  std::string meta_json_, sums_text_;
  bool have_sealed_ = false;
  std::string out_buf_;
};

// Convenience for whole archives held in memory (tests, small tools).
Result<ArchiveReport> CheckArchive(std::string_view compressed);

}  // namespace bao::snapshot
