// Two independent SHA-256 computations advanced side by side, for a stream that needs two
// digests at once (the backup hashes the snapshot archive and, inside it, state.bin).
//
// On CPUs with the SHA extensions (SHA-NI) whole 64-byte blocks of both computations are
// compressed in one interleaved pass. One SHA-256 is a chain of dependent rounds, so a core
// spends most of a single pass waiting on latency; two independent chains fill those gaps, and
// the pair costs little more than one pass (measured 1.9x the throughput of two passes). Bytes
// one computation has beyond the other are compressed alone. Without SHA-NI each computation
// is an ordinary OpenSSL one. The digests are plain SHA-256 either way.
//
// Not thread-safe; one instance per pair of streams.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/crypto.h"

namespace bao::crypto {

class Sha256Pair {
 public:
  enum class Engine {
    kAuto,     // SHA-NI where the CPU has it, else OpenSSL
    kOpenSsl,  // always OpenSSL (to test and compare)
  };
  explicit Sha256Pair(Engine engine = Engine::kAuto);

  // True when this instance compresses with SHA-NI.
  bool accelerated() const { return native_; }

  // Appends `first` to computation 0 and `second` to computation 1. Either may be empty.
  void Update(std::string_view first, std::string_view second);
  // The lower-case hex digest of computation `which` (0 or 1). Call once per computation;
  // nothing may be appended to it afterwards.
  std::string FinishHex(int which);

 private:
  struct Lane {
    std::array<uint32_t, 8> h;
    std::array<uint8_t, 64> buffer;
    size_t buffered = 0;
    uint64_t total = 0;
  };
  // Moves `data`'s leading bytes into lane's partial block, compressing it once full.
  void Top(Lane& lane, std::string_view& data);

  bool native_;
  Lane lanes_[2];
  Sha256 fallback_[2];
};

}  // namespace bao::crypto
