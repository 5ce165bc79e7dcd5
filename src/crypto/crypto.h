// Hashes, MACs, encodings and randomness over OpenSSL 3. All functions are thread-safe.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bao::crypto {

// Incremental SHA-256. Not thread-safe per instance; movable, not copyable.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Returns the 32-byte digest and resets the instance for reuse.
  std::array<uint8_t, 32> Finish();
  // Finish() as lower-case hex.
  std::string FinishHex();

 private:
  EVP_MD_CTX* ctx_;
};

// Incremental MD5 (for the Content-MD5 header storage APIs check bodies against, not for
// security). Not thread-safe per instance; movable, not copyable.
class Md5 {
 public:
  Md5();
  void Update(std::string_view data);
  // The digest as base64 (Content-MD5's form); resets the instance for reuse.
  std::string FinishBase64();

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

std::array<uint8_t, 32> Sha256Digest(std::string_view data);
std::string Sha256Hex(std::string_view data);
std::string Md5Base64(std::string_view data);
std::array<uint8_t, 32> HmacSha256(std::string_view key, std::string_view data);

std::string HexEncode(std::string_view bytes);
template <size_t N>
std::string HexEncode(const std::array<uint8_t, N>& bytes) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), N));
}
// Decodes hex (either case); kInvalidArgument on odd length or a non-hex character.
Result<std::string> HexDecode(std::string_view hex);
bool IsLowerHex(std::string_view text, size_t length);

std::string Base64Encode(std::string_view bytes);
std::string Base64UrlEncode(std::string_view bytes);  // no padding (JWT)
// Accepts standard and URL alphabets, with or without padding.
Result<std::string> Base64Decode(std::string_view text);

// `n` bytes from the OS CSPRNG.
std::string RandomBytes(size_t n);
// `n` random lower-case hex characters.
std::string RandomHex(size_t n);

// CRC-32C (Castagnoli), incremental: pass the previous value (0 to start).
uint32_t Crc32c(uint32_t crc, std::string_view data);
// The CRC-32C of A followed by B, from crc(A), crc(B) and B's length, without the bytes
// (O(log length_b)): how per-part checksums make a whole-object one.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b);
// A CRC-32C as the storage APIs (GCS, S3) write it: base64 of its 4 big-endian bytes.
std::string Crc32cBase64(uint32_t crc);

// Signs `data` with RSASSA-PKCS1-v1_5 SHA-256 using a PEM private key (PKCS#8 or PKCS#1).
// kInvalidArgument when the key cannot be parsed (the key itself is never in the message).
Result<std::string> RsaSha256Sign(std::string_view pem_private_key, std::string_view data);
// Verifies such a signature with a PEM public key or certificate.
Result<bool> RsaSha256Verify(std::string_view pem_public_key, std::string_view data,
                             std::string_view signature);

}  // namespace bao::crypto
