#include "crypto/crypto.h"

#include <gtest/gtest.h>

#include <random>

namespace bao::crypto {
namespace {

TEST(CryptoTest, Sha256KnownAnswers) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Content-MD5's form: base64 of the 16-byte digest (RFC 1321's test values).
TEST(CryptoTest, Md5KnownAnswersOneShotAndIncremental) {
  EXPECT_EQ(Md5Base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Md5Base64("abc"), "kAFQmDzST7DWlj99KOF/cg==");
  Md5 md5;
  md5.Update("a");
  md5.Update("");
  md5.Update("bc");
  EXPECT_EQ(md5.FinishBase64(), "kAFQmDzST7DWlj99KOF/cg==");
  EXPECT_EQ(md5.FinishBase64(), "1B2M2Y8AsgTpgAmY7PhCfg==");  // reset by the first Finish
}

TEST(CryptoTest, Crc32cKnownAnswerAndIncremental) {
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);  // the standard check value
  EXPECT_EQ(Crc32c(0, ""), 0u);
  std::mt19937 rng(3);
  std::string data(100003, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  uint32_t whole = Crc32c(0, data);
  // Split at every kind of alignment: the result must not depend on chunking.
  for (size_t cut : {1u, 7u, 8u, 9u, 4096u, 99999u}) {
    uint32_t parts = Crc32c(Crc32c(0, std::string_view(data).substr(0, cut)),
                            std::string_view(data).substr(cut));
    EXPECT_EQ(parts, whole) << cut;
  }
  // 32 bytes of zeros: the iSCSI (RFC 3720) test vector.
  EXPECT_EQ(Crc32c(0, std::string(32, '\0')), 0x8A9136AAu);
}

TEST(CryptoTest, Crc32cCombineEqualsTheCrcOfTheConcatenation) {
  std::mt19937 rng(5);
  std::string data(100003, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  uint32_t whole = Crc32c(0, data);
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{4096}, size_t{65537}, data.size()}) {
    std::string_view a = std::string_view(data).substr(0, split);
    std::string_view b = std::string_view(data).substr(split);
    EXPECT_EQ(Crc32cCombine(Crc32c(0, a), Crc32c(0, b), b.size()), whole) << split;
  }
  // Folding many parts in order, as a multipart upload does.
  uint32_t folded = 0;
  for (size_t off = 0; off < data.size(); off += 5000) {
    std::string_view part = std::string_view(data).substr(off, 5000);
    folded = Crc32cCombine(folded, Crc32c(0, part), part.size());
  }
  EXPECT_EQ(folded, whole);
  EXPECT_EQ(Crc32cCombine(Crc32c(0, "1234"), Crc32c(0, "56789"), 5), 0xE3069283u);
}

TEST(CryptoTest, Crc32cBase64IsBigEndian) {
  EXPECT_EQ(Crc32cBase64(0xE3069283u), Base64Encode(std::string("\xE3\x06\x92\x83", 4)));
  EXPECT_EQ(Crc32cBase64(0), "AAAAAA==");
}

TEST(CryptoTest, HexAndBase64RoundTrip) {
  std::string bytes = "\x00\x01\xfe\xff hello";
  EXPECT_EQ(*HexDecode(HexEncode(bytes)), bytes);
  EXPECT_EQ(*Base64Decode(Base64Encode(bytes)), bytes);
  EXPECT_EQ(*Base64Decode(Base64UrlEncode(bytes)), bytes);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
}

}  // namespace
}  // namespace bao::crypto
