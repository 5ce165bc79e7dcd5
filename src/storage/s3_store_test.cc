#include "storage/s3_store.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/crypto.h"

namespace bao::storage::s3_internal {
namespace {

TEST(Crc32cCombine, EqualsTheCrcOfTheConcatenation) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>((i * 131) ^ (i >> 7)));
  uint32_t whole = crypto::Crc32c(0, data);
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{4096}, size_t{65537}, data.size()}) {
    std::string_view a = std::string_view(data).substr(0, split);
    std::string_view b = std::string_view(data).substr(split);
    EXPECT_EQ(Crc32cCombine(crypto::Crc32c(0, a), crypto::Crc32c(0, b), b.size()), whole)
        << "split at " << split;
  }
}

TEST(Crc32cCombine, FoldsManyPartsInOrder) {
  std::string data(3 * 5000 + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 2654435761u >> 24);
  uint32_t crc = 0;
  for (size_t off = 0; off < data.size(); off += 5000) {
    std::string_view part = std::string_view(data).substr(off, 5000);
    crc = Crc32cCombine(crc, crypto::Crc32c(0, part), part.size());
  }
  EXPECT_EQ(crc, crypto::Crc32c(0, data));
  // "123456789" is CRC-32C's check value input: 0xE3069283.
  EXPECT_EQ(Crc32cCombine(crypto::Crc32c(0, "1234"), crypto::Crc32c(0, "56789"), 5), 0xE3069283u);
}

}  // namespace
}  // namespace bao::storage::s3_internal
