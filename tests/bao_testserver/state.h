// The replicated state of the imitated cluster: the bytes that become `state.bin` in a
// snapshot. Either generated deterministically from (seed, size) with an AES-128-CTR keystream
// (never held in memory), or a file on disk written by a restore. A State is immutable once
// built and shared between concurrent snapshot streams through std::shared_ptr; a file-backed
// State deletes its file when the last reference goes away. Thread-safe (immutable).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace bao::testserver {

class State {
 public:
  // Sequential reader over the state's bytes. Not thread-safe; one per stream.
  class Reader {
   public:
    virtual ~Reader() = default;
    // Fills `buf` with the next min(len, remaining) bytes; returns how many (0 at the end).
    virtual Result<size_t> Read(char* buf, size_t len) = 0;
  };

  // Generates the state for (size, seed) and computes its SHA-256 and CRC-32 (one pass over
  // the bytes; about 1.5 GB/s here). The same (size, seed) always gives the same bytes.
  static Result<std::shared_ptr<const State>> Generate(uint64_t size, uint64_t seed);

  // Adopts the file at `path` (already complete, `size` bytes, SHA-256 `sha256_hex`, zlib
  // CRC-32 `crc32`); the file is unlinked when the State is destroyed.
  static std::shared_ptr<const State> AdoptFile(std::string path, uint64_t size,
                                                std::string sha256_hex, uint32_t crc32);

  ~State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  uint64_t size() const { return size_; }
  const std::string& sha256_hex() const { return sha256_hex_; }
  // CRC-32 (gzip's) of the bytes: lets a snapshot's gzip trailer be computed without another
  // pass over state.bin.
  uint32_t crc32() const { return crc32_; }
  // "generated seed=N" or "restored".
  std::string Describe() const;

  Result<std::unique_ptr<Reader>> OpenReader() const;

 private:
  State() = default;

  uint64_t size_ = 0;
  uint64_t seed_ = 0;
  std::string path_;  // empty for generated states
  std::string sha256_hex_;
  uint32_t crc32_ = 0;
};

}  // namespace bao::testserver
