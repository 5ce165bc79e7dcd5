// Test key material made with OpenSSL at run time (nothing secret is checked in): a CA and a
// server certificate for 127.0.0.1 / localhost, RSA key pairs, and RS256 JWTs. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace bao::testing {

struct TestPkiFiles {
  std::string ca_file;    // <dir>/ca.crt: the CA certificate (PEM)
  std::string cert_file;  // <dir>/server.crt: server certificate, SAN IP:127.0.0.1, DNS:localhost
  std::string key_file;   // <dir>/server.key: its private key (PEM, PKCS#8)
};

// Creates a fresh CA and a server certificate signed by it (valid from one hour ago for a
// day) and writes the three files into `dir` (which must exist). kInternal when OpenSSL fails.
Result<TestPkiFiles> MakeTestPki(const std::string& dir);

struct RsaKeyPair {
  std::string private_pem;  // PKCS#8
  std::string public_pem;   // SubjectPublicKeyInfo ("BEGIN PUBLIC KEY")
};

// A new RSA key pair (2048 bits), e.g. for signing test JWTs.
Result<RsaKeyPair> MakeRsaKeyPair();

// A compact RS256 JWT ({"alg":"RS256","typ":"JWT"} header) carrying `claims`, signed with
// `private_pem`. kInvalidArgument when the key does not parse.
Result<std::string> MakeJwt(const std::string& private_pem, const nlohmann::json& claims);

}  // namespace bao::testing
