// The snapshot archive in both directions, streaming with bounded memory:
//  - SnapshotWriter produces the gzip-compressed tar that GET /v1/sys/storage/raft/snapshot
//    serves (members meta.json, state.bin, SHA256SUMS, SHA256SUMS.sealed, in that order);
//  - RestoreReceiver consumes a restore request body, checks it the way OpenBao does, and keeps
//    state.bin in a temporary file that becomes the new State on success.
// Neither class is thread-safe; each is used by one request.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "crypto/crypto.h"
#include "state.h"

namespace bao::testserver {

struct SnapshotMeta {
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t configuration_index = 1;
  // (ID, cluster Address) of every voter, e.g. ("node0", "127.0.0.1:8201").
  std::vector<std::pair<std::string, std::string>> servers;
};

// The binary SHA256SUMS.sealed content for the hash list `sums` under `seal_key`: the 32-byte
// HMAC-SHA256 of `sums` followed by `sums` itself. "Opening" it (OpenSums) needs the same key,
// as opening OpenBao's sealed hash file needs the cluster's seal.
std::string SealSums(std::string_view seal_key, std::string_view sums);
// The hash list inside `sealed`; nullopt when it was not sealed with `seal_key` (or is damaged).
std::optional<std::string> OpenSums(std::string_view seal_key, std::string_view sealed);

// OpenBao's answer (400) to a plain restore of a snapshot whose sealed hash file does not open
// with this cluster's keys (internal/vault/logical_system_raft.go, Shamir seal).
inline constexpr const char* kOtherClusterMessage =
    "could not verify hash file, possibly the snapshot is using a different set of unseal keys; "
    "use the snapshot-force API to bypass this check";

class SnapshotWriter {
 public:
  // `gzip_level` 0..9. Level 0 writes stored deflate blocks itself: state.bin bytes are
  // generated (or read) straight into the output buffer and the gzip CRC-32 is derived from
  // the State's cached one, so serving costs little more than producing the bytes. Levels
  // 1..9 go through zlib.
  SnapshotWriter(std::shared_ptr<const State> state, const SnapshotMeta& meta, std::string seal_key,
                 int gzip_level);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // The next piece of the gzip stream (up to about 1 MiB), as a view into an internal buffer
  // that stays valid (and writable, for fault injection) until the next call. An empty view
  // means the stream is complete. An error (state file unreadable, zlib failure) ends it.
  Result<std::string_view> Next();

 private:
  Status Start();
  // The tar bytes after state.bin: its padding, SHA256SUMS, SHA256SUMS.sealed, end blocks.
  std::string Tail() const;
  Result<std::string_view> NextStored();
  Result<std::string_view> NextDeflate();
  Status FillDeflateInput();

  std::shared_ptr<const State> state_;
  SnapshotMeta meta_;
  std::string seal_key_;
  int level_;
  bool started_ = false;
  bool finished_ = false;
  uint64_t mtime_ = 0;  // of every tar member: when the snapshot started
  // 0: tar head (pending_), 1: state.bin data, 2: tar tail (pending_), 3: end of input.
  int phase_ = 0;
  uint64_t state_read_ = 0;
  std::unique_ptr<State::Reader> reader_;
  std::string meta_json_;
  std::string pending_;
  size_t pending_off_ = 0;
  std::vector<char> out_;
  // Level 0.
  bool gzip_header_done_ = false;
  uint32_t crc_ = 0;
  uint64_t total_in_ = 0;
  // Levels 1..9.
  bool zlib_ready_ = false;
  bool input_done_ = false;
  gz_header gz_head_{};
  std::vector<char> in_;
  z_stream zs_{};
};

struct RestoredSnapshot {
  std::shared_ptr<const State> state;
  uint64_t index = 0;
  uint64_t term = 0;
  std::string id;
};

class RestoreReceiver {
 public:
  // state.bin is spooled to a new file in `temp_dir`.
  explicit RestoreReceiver(std::string temp_dir);
  ~RestoreReceiver();  // removes the spool file unless Finish() succeeded
  RestoreReceiver(const RestoreReceiver&) = delete;
  RestoreReceiver& operator=(const RestoreReceiver&) = delete;

  // Feeds the next part of the request body. The first error sticks (later calls return it);
  // the message says what is wrong with the archive. Once the tar archive has ended, what
  // follows is ignored.
  Status Write(std::string_view data);

  // Called once the body has ended (completely or not). Checks, in OpenBao's order: the gzip
  // header; the tar archive up to its end (what follows it, the gzip trailer included, is never
  // looked at, as in OpenBao); unless `seal_key` is null (snapshot-force), that SHA256SUMS.sealed
  // opens with `*seal_key` and its hash list matches; that SHA256SUMS matches; and (beyond OpenBao)
  // that state.bin has meta.json's Size. The error messages are OpenBao's: kInvalidArgument (HTTP
  // 400) carries kOtherClusterMessage, every other code (HTTP 500) "failed to read snapshot file:
  // ..." or "failed to decompress snapshot: ...". On success the returned State owns the spooled
  // file.
  Result<RestoredSnapshot> Finish(const std::string* seal_key);

 private:
  Status Parse(const char* data, size_t len);
  // True once the tar archive has ended: two zero blocks, or one zero block or a header
  // boundary followed by the end of the data (what Go's archive/tar accepts).
  bool TarEnded() const;
  Status BeginMember();
  Status MemberData(const char* data, size_t len);
  Status OpenSpool();

  std::string temp_dir_;
  std::string spool_path_;
  int spool_fd_ = -1;
  Status error_;
  z_stream zs_{};
  gz_header gz_head_{};
  bool inflate_ready_ = false;
  bool gzip_done_ = false;
  bool gzip_header_bad_ = false;
  uint64_t body_bytes_ = 0;
  std::vector<char> out_;

  // kSecondZero: after one zero block, reading the next block.
  enum class TarPhase { kHeader, kData, kPadding, kSecondZero, kEnd };
  TarPhase phase_ = TarPhase::kHeader;
  std::string header_;
  std::string member_;
  uint64_t member_remaining_ = 0;
  uint64_t padding_remaining_ = 0;
  bool skip_member_ = false;
  std::vector<std::pair<std::string, std::string>> small_members_;  // name -> content
  uint64_t state_size_ = 0;
  bool have_state_ = false;
  crypto::Sha256 state_hash_;
  uLong state_crc_ = 0;
  std::string state_sha_;
};

}  // namespace bao::testserver
