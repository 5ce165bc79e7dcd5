#include "crypto/sha256_pair.h"

#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace bao::crypto {
namespace {

constexpr std::array<uint32_t, 8> kInitialHash = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#if defined(__x86_64__)

// The 64 round constants (FIPS 180-4, 4.2.2).
alignas(16) constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

bool CpuHasShaNi() {
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  const bool ssse3 = (c & bit_SSSE3) != 0, sse41 = (c & bit_SSE4_1) != 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  return ssse3 && sse41 && (b & bit_SHA) != 0;
}

__attribute__((target("avx"))) void ZeroUpper() {
  _mm256_zeroupper();
}

// The SHA instructions exist only in the legacy SSE encoding. Run after AVX code that left
// the upper vector halves dirty (ISA-L's inflate and CRC leave them so), every legacy SSE
// instruction pays a transition penalty: measured, the archive checker's hashing ran 2.6x
// slower. Clearing the upper halves first (vzeroupper) avoids that.
void PrepareForLegacySse() {
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) ZeroUpper();
}

// Compresses `blocks` 64-byte blocks into each of N hash states at once, lane l reading from
// data[l]. With N = 2 the two lanes' instructions interleave, so the rounds of one chain run
// while the other's wait. The SHA-NI instructions keep the state as two vectors, (A,B,E,F) and
// (C,D,G,H); each sha256rnds2 performs two rounds, each sha256msg1/msg2 pair extends the
// message schedule by four words.
template <int N>
__attribute__((target("sha,sse4.1,ssse3"))) void CompressShaNi(uint32_t* const state[N],
                                                               const uint8_t* const data[N],
                                                               size_t blocks) {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abef[N], cdgh[N];
  for (int l = 0; l < N; ++l) {
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<__m128i*>(state[l])), 0xB1);
    __m128i hgfe =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<__m128i*>(state[l] + 4)), 0x1B);
    abef[l] = _mm_alignr_epi8(dcba, hgfe, 8);
    cdgh[l] = _mm_blend_epi16(hgfe, dcba, 0xF0);
  }
  for (size_t b = 0; b < blocks; ++b) {
    __m128i saved_abef[N], saved_cdgh[N], w[N][4];
    for (int l = 0; l < N; ++l) {
      saved_abef[l] = abef[l];
      saved_cdgh[l] = cdgh[l];
    }
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {  // rounds 4g .. 4g+3
      const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * g));
#pragma GCC unroll 2
      for (int l = 0; l < N; ++l) {
        __m128i& words = w[l][g % 4];
        if (g < 4) {
          words = _mm_shuffle_epi8(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(data[l] + 64 * b + 16 * g)),
              byte_swap);
        } else {
          // W[t..t+3] from W[t-16..t-13] (words), W[t-12..], W[t-7..t-4] and W[t-4..t-1].
          __m128i x = _mm_sha256msg1_epu32(words, w[l][(g + 1) % 4]);
          x = _mm_add_epi32(x, _mm_alignr_epi8(w[l][(g + 3) % 4], w[l][(g + 2) % 4], 4));
          words = _mm_sha256msg2_epu32(x, w[l][(g + 3) % 4]);
        }
        __m128i wk = _mm_add_epi32(words, k);
        cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], wk);
        abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_shuffle_epi32(wk, 0x0E));
      }
    }
    for (int l = 0; l < N; ++l) {
      abef[l] = _mm_add_epi32(abef[l], saved_abef[l]);
      cdgh[l] = _mm_add_epi32(cdgh[l], saved_cdgh[l]);
    }
  }
  for (int l = 0; l < N; ++l) {
    __m128i feba = _mm_shuffle_epi32(abef[l], 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh[l], 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state[l]), _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state[l] + 4), _mm_alignr_epi8(dchg, feba, 8));
  }
}

void CompressOne(uint32_t* state, const uint8_t* data, size_t blocks) {
  PrepareForLegacySse();
  uint32_t* const s[1] = {state};
  const uint8_t* const d[1] = {data};
  CompressShaNi<1>(s, d, blocks);
}

#else

bool CpuHasShaNi() {
  return false;
}
void CompressOne(uint32_t*, const uint8_t*, size_t) {}

#endif

}  // namespace

Sha256Pair::Sha256Pair(Engine engine) : native_(engine == Engine::kAuto && CpuHasShaNi()) {
  for (Lane& lane : lanes_) lane.h = kInitialHash;
}

void Sha256Pair::Top(Lane& lane, std::string_view& data) {
  if (data.empty()) return;  // (its data() may be null, which memcpy must not see)
  if (lane.buffered == 0 && data.size() >= 64) return;  // whole blocks go straight through
  size_t n = std::min(data.size(), 64 - lane.buffered);
  std::memcpy(lane.buffer.data() + lane.buffered, data.data(), n);
  lane.buffered += n;
  lane.total += n;
  data.remove_prefix(n);
  if (lane.buffered == 64) {
    CompressOne(lane.h.data(), lane.buffer.data(), 1);
    lane.buffered = 0;
  }
}

void Sha256Pair::Update(std::string_view first, std::string_view second) {
  if (!native_) {
    fallback_[0].Update(first);
    fallback_[1].Update(second);
    return;
  }
  std::string_view in[2] = {first, second};
  for (int l = 0; l < 2; ++l) Top(lanes_[l], in[l]);
  // Each lane's partial block is now empty, or its input is used up.
  size_t blocks[2] = {in[0].size() / 64, in[1].size() / 64};
#if defined(__x86_64__)
  size_t both = std::min(blocks[0], blocks[1]);
  if (both > 0) {
    uint32_t* const s[2] = {lanes_[0].h.data(), lanes_[1].h.data()};
    const uint8_t* const d[2] = {reinterpret_cast<const uint8_t*>(in[0].data()),
                                 reinterpret_cast<const uint8_t*>(in[1].data())};
    PrepareForLegacySse();
    CompressShaNi<2>(s, d, both);
  }
#else
  size_t both = 0;
#endif
  for (int l = 0; l < 2; ++l) {
    Lane& lane = lanes_[l];
    if (blocks[l] > both) {
      CompressOne(lane.h.data(), reinterpret_cast<const uint8_t*>(in[l].data()) + 64 * both,
                  blocks[l] - both);
    }
    lane.total += 64 * blocks[l];
    in[l].remove_prefix(64 * blocks[l]);
    Top(lane, in[l]);  // the tail, fewer than 64 bytes
  }
}

std::string Sha256Pair::FinishHex(int which) {
  if (!native_) return fallback_[which].FinishHex();
  Lane& lane = lanes_[which];
  // Padding (FIPS 180-4, 5.1.1): 0x80, zeros, and the message length in bits, big-endian,
  // filling one block or, when fewer than 9 bytes are left in this one, two.
  const uint64_t bits = lane.total * 8;
  uint8_t last[128] = {};
  std::memcpy(last, lane.buffer.data(), lane.buffered);
  last[lane.buffered] = 0x80;
  const size_t length = lane.buffered < 56 ? 64 : 128;
  for (int i = 0; i < 8; ++i) last[length - 8 + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  CompressOne(lane.h.data(), last, length / 64);
  std::array<uint8_t, 32> digest;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) digest[4 * i + j] = static_cast<uint8_t>(lane.h[i] >> (24 - 8 * j));
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

}  // namespace bao::crypto
