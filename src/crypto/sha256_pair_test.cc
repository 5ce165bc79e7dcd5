#include "crypto/sha256_pair.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace bao::crypto {
namespace {

using Engine = Sha256Pair::Engine;

std::string Random(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(Sha256PairTest, KnownAnswersOnBothLanes) {
  for (Engine engine : {Engine::kAuto, Engine::kOpenSsl}) {
    Sha256Pair pair(engine);
    pair.Update("abc", "");
    pair.Update("", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
    EXPECT_EQ(pair.FinishHex(0),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(pair.FinishHex(1),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    Sha256Pair empty(engine);
    empty.Update(std::string_view(), std::string_view());  // null data, as callers may pass
    EXPECT_EQ(empty.FinishHex(1),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }
}

TEST(Sha256PairTest, MillionAs) {
  Sha256Pair pair;
  std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) pair.Update(a, std::string_view(a).substr(0, i % 2 ? 1000 : 0));
  EXPECT_EQ(pair.FinishHex(0), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(pair.FinishHex(1), Sha256Hex(std::string(500000, 'a')));
}

// Every padding boundary and many ways of cutting two unequal streams, against OpenSSL.
TEST(Sha256PairTest, MatchesOpenSslWhateverTheLengthsAndCuts) {
  std::mt19937_64 rng(42);
  for (size_t len : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 70001}) {
    std::string a = Random(rng, len);
    std::string b = Random(rng, (len * 7) % 5003 + (len & 1));
    for (int trial = 0; trial < 6; ++trial) {
      Sha256Pair pair;
      size_t ia = 0, ib = 0;
      while (ia < a.size() || ib < b.size()) {
        size_t na = std::min<size_t>(a.size() - ia, rng() % (trial < 3 ? 200 : 20000));
        size_t nb = std::min<size_t>(b.size() - ib, rng() % (trial < 3 ? 200 : 20000));
        if (na == 0 && nb == 0) continue;
        pair.Update(std::string_view(a).substr(ia, na), std::string_view(b).substr(ib, nb));
        ia += na;
        ib += nb;
      }
      ASSERT_EQ(pair.FinishHex(0), Sha256Hex(a)) << len << " trial " << trial;
      ASSERT_EQ(pair.FinishHex(1), Sha256Hex(b)) << len << " trial " << trial;
    }
  }
}

TEST(Sha256PairTest, UsesShaNiWhereTheCpuHasIt) {
  EXPECT_FALSE(Sha256Pair(Engine::kOpenSsl).accelerated());
#if defined(__x86_64__)
  EXPECT_EQ(Sha256Pair().accelerated(),
            __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1"));
#endif
}

}  // namespace
}  // namespace bao::crypto
