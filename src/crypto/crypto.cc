#include "crypto/crypto.h"

#include <isa-l/crc.h>
#include <openssl/bio.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace bao::crypto {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
}
Sha256::~Sha256() {
  if (ctx_ != nullptr) EVP_MD_CTX_free(ctx_);
}
Sha256::Sha256(Sha256&& other) noexcept : ctx_(other.ctx_) {
  other.ctx_ = nullptr;
}
Sha256& Sha256::operator=(Sha256&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) EVP_MD_CTX_free(ctx_);
    ctx_ = other.ctx_;
    other.ctx_ = nullptr;
  }
  return *this;
}

void Sha256::Update(std::string_view data) {
  EVP_DigestUpdate(ctx_, data.data(), data.size());
}

std::array<uint8_t, 32> Sha256::Finish() {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, out.data(), &len);
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  return out;
}

std::string Sha256::FinishHex() {
  return HexEncode(Finish());
}

std::array<uint8_t, 32> Sha256Digest(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

std::string Sha256Hex(std::string_view data) {
  return HexEncode(Sha256Digest(data));
}

Md5::Md5() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr);
}

void Md5::Update(std::string_view data) {
  EVP_DigestUpdate(ctx_.get(), data.data(), data.size());
}

std::string Md5::FinishBase64() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), out, &len);
  EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr);
  return Base64Encode(std::string_view(reinterpret_cast<char*>(out), len));
}

std::string Md5Base64(std::string_view data) {
  Md5 md5;
  md5.Update(data);
  return md5.FinishBase64();
}

std::array<uint8_t, 32> HmacSha256(std::string_view key, std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 15];
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgument("hex string has odd length");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgument("hex string has a non-hex character");
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

bool IsLowerHex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out = Base64Encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string in;
  in.reserve(text.size() + 3);
  for (char c : text) {
    if (c == '-')
      in.push_back('+');
    else if (c == '_')
      in.push_back('/');
    else if (c == '\n' || c == '\r' || c == ' ')
      continue;
    else
      in.push_back(c);
  }
  while (!in.empty() && in.back() == '=') in.pop_back();
  size_t pad = (4 - in.size() % 4) % 4;
  if (pad == 3) return InvalidArgument("malformed base64 text");
  in.append(pad, '=');
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return InvalidArgument("malformed base64 text");
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::abort();  // the OS CSPRNG failing is not a condition we can continue from
  }
  return out;
}

std::string RandomHex(size_t n) {
  return HexEncode(RandomBytes((n + 1) / 2)).substr(0, n);
}

namespace {

constexpr uint32_t kCrc32cPolynomial = 0x82F63B78u;  // reflected

}  // namespace

// ISA-L's crc32_iscsi is CRC-32C without the final inversion and with the initial value as
// given; it picks its widest implementation (carry-less multiply folding) at run time, several
// times the speed of the crc32 instruction alone.
uint32_t Crc32c(uint32_t crc, std::string_view data) {
  constexpr size_t kMaxChunk = size_t{1} << 30;  // its length is an int
  crc = ~crc;
  while (!data.empty()) {
    const size_t n = std::min(data.size(), kMaxChunk);
    crc = crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(data.data())),
                      static_cast<int>(n), crc);
    data.remove_prefix(n);
  }
  return ~crc;
}

namespace {

// a(x) * b(x) modulo the CRC-32C polynomial, bit-reflected as the CRC is.
uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31;
  uint32_t p = 0;
  while (m != 0) {
    if (a & m) p ^= b;
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ kCrc32cPolynomial : b >> 1;
  }
  return p;
}

// x^(8 * n) modulo the polynomial: what appending n zero bytes multiplies a CRC by.
uint32_t XPow8N(uint64_t n) {
  uint32_t p = 1u << 31;   // x^0 (bit 31 holds x^0, bit 30 x^1, ...)
  uint32_t sq = 1u << 23;  // x^8, squared at every step: x^(8 * 2^k)
  for (; n != 0; n >>= 1) {
    if (n & 1) p = MultModP(sq, p);
    sq = MultModP(sq, sq);
  }
  return p;
}

}  // namespace

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  return MultModP(XPow8N(length_b), crc_a) ^ crc_b;
}

std::string Crc32cBase64(uint32_t crc) {
  const char be[4] = {static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
                      static_cast<char>(crc >> 8), static_cast<char>(crc)};
  return Base64Encode(std::string_view(be, 4));
}

namespace {
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
}  // namespace

Result<std::string> RsaSha256Sign(std::string_view pem_private_key, std::string_view data) {
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(pem_private_key.data(), static_cast<int>(pem_private_key.size())));
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return InvalidArgument("the private key is not a readable PEM RSA key");
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return InvalidArgument("the private key cannot sign with RS256");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return Internal("RS256 signing failed");
  }
  sig.resize(len);
  return sig;
}

Result<bool> RsaSha256Verify(std::string_view pem_public_key, std::string_view data,
                             std::string_view signature) {
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(pem_public_key.data(), static_cast<int>(pem_public_key.size())));
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    std::unique_ptr<BIO, BioDeleter> bio2(
        BIO_new_mem_buf(pem_public_key.data(), static_cast<int>(pem_public_key.size())));
    X509* cert = PEM_read_bio_X509(bio2.get(), nullptr, nullptr, nullptr);
    if (cert != nullptr) {
      key.reset(X509_get_pubkey(cert));
      X509_free(cert);
    }
  }
  if (!key) return InvalidArgument("the public key is not a readable PEM key or certificate");
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return InvalidArgument("the public key cannot verify RS256");
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
  return rc == 1;
}

}  // namespace bao::crypto
