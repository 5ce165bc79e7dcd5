#include "state.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "crypto/crypto.h"

namespace bao::testserver {
namespace {

constexpr size_t kZeroBlock = 1 << 20;

const unsigned char* Zeros() {
  static const std::vector<unsigned char>* zeros = new std::vector<unsigned char>(kZeroBlock, 0);
  return zeros->data();
}

class GeneratedReader : public State::Reader {
 public:
  GeneratedReader(uint64_t size, uint64_t seed) : remaining_(size), ctx_(EVP_CIPHER_CTX_new()) {
    auto digest = crypto::Sha256Digest("bao-testserver-state:" + std::to_string(seed));
    unsigned char iv[16] = {};
    EVP_EncryptInit_ex(ctx_, EVP_aes_128_ctr(), nullptr, digest.data(), iv);
  }
  ~GeneratedReader() override { EVP_CIPHER_CTX_free(ctx_); }

  Result<size_t> Read(char* buf, size_t len) override {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, remaining_));
    size_t done = 0;
    while (done < n) {
      size_t step = std::min(n - done, kZeroBlock);
      int out_len = 0;
      if (EVP_EncryptUpdate(ctx_, reinterpret_cast<unsigned char*>(buf + done), &out_len, Zeros(),
                            static_cast<int>(step)) != 1 ||
          static_cast<size_t>(out_len) != step) {
        return Internal("AES-CTR keystream generation failed");
      }
      done += step;
    }
    remaining_ -= n;
    return n;
  }

 private:
  uint64_t remaining_;
  EVP_CIPHER_CTX* ctx_;
};

class FileReader : public State::Reader {
 public:
  FileReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FileReader() override { close(fd_); }

  Result<size_t> Read(char* buf, size_t len) override {
    size_t done = 0;
    while (done < len) {
      ssize_t r = read(fd_, buf + done, len - done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Internal("reading state file " + path_ + ": " + std::strerror(errno));
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Result<std::shared_ptr<const State>> State::Generate(uint64_t size, uint64_t seed) {
  std::shared_ptr<State> state(new State());
  state->size_ = size;
  state->seed_ = seed;
  GeneratedReader reader(size, seed);
  crypto::Sha256 hash;
  uLong crc = ::crc32(0, nullptr, 0);
  std::vector<char> buf(kZeroBlock);
  while (true) {
    BAO_ASSIGN_OR_RETURN(size_t n, reader.Read(buf.data(), buf.size()));
    if (n == 0) break;
    hash.Update(std::string_view(buf.data(), n));
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(buf.data()), n);
  }
  state->sha256_hex_ = hash.FinishHex();
  state->crc32_ = static_cast<uint32_t>(crc);
  return std::shared_ptr<const State>(std::move(state));
}

std::shared_ptr<const State> State::AdoptFile(std::string path, uint64_t size,
                                              std::string sha256_hex, uint32_t crc32) {
  std::shared_ptr<State> state(new State());
  state->crc32_ = crc32;
  state->size_ = size;
  state->path_ = std::move(path);
  state->sha256_hex_ = std::move(sha256_hex);
  return state;
}

State::~State() {
  if (!path_.empty()) unlink(path_.c_str());
}

std::string State::Describe() const {
  return path_.empty() ? "generated seed=" + std::to_string(seed_) : "restored";
}

Result<std::unique_ptr<State::Reader>> State::OpenReader() const {
  if (path_.empty()) {
    return std::unique_ptr<Reader>(std::make_unique<GeneratedReader>(size_, seed_));
  }
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Internal("opening state file " + path_ + ": " + std::strerror(errno));
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<Reader>(std::make_unique<FileReader>(fd, path_));
}

}  // namespace bao::testserver
