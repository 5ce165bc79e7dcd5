// Test-only: OpenBao snapshot archives built with libarchive, an implementation independent of
// the project's checker. Header-only; a test that includes it links LibArchive (the module's
// TEST_DEPS).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "crypto/crypto.h"

namespace bao::snapshot::testing {

using Members = std::vector<std::pair<std::string, std::string>>;

// Builds a gzip'd tar with libarchive, an implementation independent of the checker.
inline std::string WriteArchive(const Members& members, int format = ARCHIVE_FORMAT_TAR_USTAR) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format(a, format);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* user, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& [name, content] : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

struct Snapshot {
  std::string meta, state, sums, sealed;
  Members members() const {
    return {{"meta.json", meta},
            {"state.bin", state},
            {"SHA256SUMS", sums},
            {"SHA256SUMS.sealed", sealed}};
  }
};

inline Snapshot MakeSnapshot(size_t state_size, uint64_t announced_size = UINT64_MAX) {
  Snapshot s;
  s.state = RandomBytes(state_size, 7);
  uint64_t size = announced_size == UINT64_MAX ? state_size : announced_size;
  s.meta = R"({"Version":1,"ID":"3-1042-1736910000000","Index":1042,"Term":3,"Peers":"","Size":)" +
           std::to_string(size) + "}";
  s.sums =
      crypto::Sha256Hex(s.meta) + "  meta.json\n" + crypto::Sha256Hex(s.state) + "  state.bin\n";
  s.sealed = RandomBytes(64, 9);
  return s;
}

// A complete, valid snapshot archive whose `state_size` state bytes are random from `seed`.
inline std::string ValidArchive(size_t state_size, uint64_t seed) {
  Snapshot s = MakeSnapshot(state_size);
  s.state = RandomBytes(state_size, seed);
  s.sums =
      crypto::Sha256Hex(s.meta) + "  meta.json\n" + crypto::Sha256Hex(s.state) + "  state.bin\n";
  return WriteArchive(s.members());
}

}  // namespace bao::snapshot::testing
