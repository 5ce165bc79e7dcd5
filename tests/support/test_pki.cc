#include "support/test_pki.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "common/files.h"
#include "crypto/crypto.h"

namespace bao::testing {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter>;
using Cert = std::unique_ptr<X509, Deleter>;
using Bio = std::unique_ptr<BIO, Deleter>;

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> PrivatePem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return Internal("PEM_write_bio_PrivateKey failed");
  }
  return BioText(bio.get());
}

Result<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return Internal("PEM_write_bio_X509 failed");
  return BioText(bio.get());
}

Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return Internal(std::string("cannot build extension ") + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? Status::Ok() : Internal(std::string("cannot add extension ") + value);
}

// A certificate for `key` named `common_name`, signed by (issuer, issuer_key); self-signed
// when issuer is null.
Result<Cert> MakeCert(EVP_PKEY* key, const char* common_name, X509* issuer, EVP_PKEY* issuer_key,
                      bool ca) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  std::string serial = crypto::RandomBytes(16);
  serial[0] = static_cast<char>(serial[0] & 0x7f);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("bao-backup tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    BAO_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE"));
    BAO_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
    BAO_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  } else {
    BAO_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_basic_constraints, "CA:FALSE"));
    BAO_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_key_usage,
                                     "critical,digitalSignature,keyEncipherment"));
    BAO_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth"));
    BAO_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"));
    BAO_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    return Internal("X509_sign failed");
  }
  return cert;
}

Result<Key> NewRsaKey() {
  Key key(EVP_RSA_gen(2048));
  if (!key) return Internal("RSA key generation failed");
  return key;
}

}  // namespace

Result<TestPkiFiles> MakeTestPki(const std::string& dir) {
  BAO_ASSIGN_OR_RETURN(Key ca_key, NewRsaKey());
  BAO_ASSIGN_OR_RETURN(Cert ca,
                       MakeCert(ca_key.get(), "bao-backup test CA", nullptr, nullptr, true));
  BAO_ASSIGN_OR_RETURN(Key server_key, NewRsaKey());
  BAO_ASSIGN_OR_RETURN(Cert server,
                       MakeCert(server_key.get(), "localhost", ca.get(), ca_key.get(), false));
  TestPkiFiles files{dir + "/ca.crt", dir + "/server.crt", dir + "/server.key"};
  BAO_ASSIGN_OR_RETURN(std::string ca_pem, CertPem(ca.get()));
  BAO_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(server.get()));
  BAO_ASSIGN_OR_RETURN(std::string key_pem, PrivatePem(server_key.get()));
  BAO_RETURN_IF_ERROR(WriteFileAtomic(files.ca_file, ca_pem));
  BAO_RETURN_IF_ERROR(WriteFileAtomic(files.cert_file, cert_pem));
  BAO_RETURN_IF_ERROR(WriteFileAtomic(files.key_file, key_pem));
  return files;
}

Result<RsaKeyPair> MakeRsaKeyPair() {
  BAO_ASSIGN_OR_RETURN(Key key, NewRsaKey());
  RsaKeyPair pair;
  BAO_ASSIGN_OR_RETURN(pair.private_pem, PrivatePem(key.get()));
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PUBKEY(bio.get(), key.get())) return Internal("PEM_write_bio_PUBKEY failed");
  pair.public_pem = BioText(bio.get());
  return pair;
}

Result<std::string> MakeJwt(const std::string& private_pem, const nlohmann::json& claims) {
  std::string input = crypto::Base64UrlEncode(R"({"alg":"RS256","typ":"JWT"})") + "." +
                      crypto::Base64UrlEncode(claims.dump());
  BAO_ASSIGN_OR_RETURN(std::string signature, crypto::RsaSha256Sign(private_pem, input));
  return input + "." + crypto::Base64UrlEncode(signature);
}

}  // namespace bao::testing
