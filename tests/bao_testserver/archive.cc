#include "archive.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace bao::testserver {
namespace {

constexpr size_t kChunk = 1 << 20;
// OpenBao reads meta.json and the hash files with copyEOFOrN(..., 8192).
constexpr size_t kMaxSmallMember = 8192;
constexpr const char* kMembers[] = {"meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"};

void PutOctal(char* field, size_t width, uint64_t value) {
  // width-1 octal digits followed by NUL.
  std::memset(field, '0', width - 1);
  field[width - 1] = '\0';
  for (size_t i = width - 1; i > 0 && value > 0; --i) {
    field[i - 1] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
}

// A ustar header for a regular file as Go's archive/tar writes OpenBao's: mode 0600, uid and
// gid 0, empty user and group names, device numbers 0. Sizes of 8 GiB and more use the GNU
// base-256 form (Go would write a PAX size record instead).
std::string TarHeader(const std::string& name, uint64_t size, uint64_t mtime) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
  PutOctal(&h[100], 8, 0600);
  PutOctal(&h[108], 8, 0);
  PutOctal(&h[116], 8, 0);
  if (size < (uint64_t{1} << 33)) {
    PutOctal(&h[124], 12, size);
  } else {
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  }
  PutOctal(&h[136], 12, mtime);
  h[156] = '0';
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  PutOctal(&h[329], 8, 0);  // devmajor
  PutOctal(&h[337], 8, 0);  // devminor
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  PutOctal(&h[148], 7, sum);
  h[155] = ' ';
  return h;
}

size_t Padding(uint64_t size) {
  return static_cast<size_t>((512 - size % 512) % 512);
}

Result<uint64_t> ParseTarNumber(const char* field, size_t width, const char* what) {
  auto first = static_cast<unsigned char>(field[0]);
  if (first & 0x80) {
    if (first != 0x80) return InvalidArgument(std::string("tar header: negative ") + what);
    uint64_t v = 0;
    for (size_t i = 1; i < width; ++i) {
      if (v >> 56) return InvalidArgument(std::string("tar header: ") + what + " too large");
      v = (v << 8) | static_cast<unsigned char>(field[i]);
    }
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  for (; i < width && field[i] != '\0' && field[i] != ' '; ++i) {
    if (field[i] < '0' || field[i] > '7') {
      return InvalidArgument(std::string("tar header: invalid ") + what + " field");
    }
    if (v >> 60) return InvalidArgument(std::string("tar header: ") + what + " too large");
    v = (v << 3) | static_cast<uint64_t>(field[i] - '0');
  }
  return v;
}

bool IsZeroBlock(const std::string& block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; });
}

}  // namespace

std::string SealSums(std::string_view seal_key, std::string_view sums) {
  auto mac = crypto::HmacSha256(seal_key, sums);
  return std::string(reinterpret_cast<const char*>(mac.data()), mac.size()) + std::string(sums);
}

std::optional<std::string> OpenSums(std::string_view seal_key, std::string_view sealed) {
  constexpr size_t kMac = 32;
  if (sealed.size() < kMac) return std::nullopt;
  std::string_view sums = sealed.substr(kMac);
  if (SealSums(seal_key, sums) != sealed) return std::nullopt;
  return std::string(sums);
}

// ---------------------------------------------------------------------------------------------

SnapshotWriter::SnapshotWriter(std::shared_ptr<const State> state, const SnapshotMeta& meta,
                               std::string seal_key, int gzip_level)
    : state_(std::move(state)), meta_(meta), seal_key_(std::move(seal_key)), level_(gzip_level) {}

SnapshotWriter::~SnapshotWriter() {
  if (zlib_ready_) deflateEnd(&zs_);
}

Status SnapshotWriter::Start() {
  started_ = true;
  BAO_ASSIGN_OR_RETURN(reader_, state_->OpenReader());
  mtime_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  nlohmann::ordered_json servers = nlohmann::ordered_json::array();
  for (const auto& [id, address] : meta_.servers) {
    servers.push_back({{"Suffrage", 0}, {"ID", id}, {"Address", address}});
  }
  // hashicorp/raft's SnapshotMeta as OpenBao 2.7.2 encodes it (json.Encoder: one line, "\n").
  nlohmann::ordered_json meta = {
      {"Version", 1},
      {"ID", "bolt-snapshot"},
      {"Index", meta_.index},
      {"Term", meta_.term},
      {"Peers", nullptr},
      {"Configuration", {{"Servers", servers}}},
      {"ConfigurationIndex", meta_.configuration_index},
      {"Size", state_->size()},
  };
  meta_json_ = meta.dump() + "\n";
  pending_ = TarHeader("meta.json", meta_json_.size(), mtime_) + meta_json_ +
             std::string(Padding(meta_json_.size()), '\0') +
             TarHeader("state.bin", state_->size(), mtime_);
  out_.resize(kChunk);
  if (level_ > 0) {
    // 15 + 16: a gzip wrapper (header and CRC-32/ISIZE trailer) around the deflate stream.
    if (deflateInit2(&zs_, level_, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return Internal("deflateInit2 failed");
    }
    zlib_ready_ = true;
    // Go's compress/gzip header: MTIME 0, OS 255 (unknown).
    gz_head_.os = 255;
    if (deflateSetHeader(&zs_, &gz_head_) != Z_OK) return Internal("deflateSetHeader failed");
    in_.resize(kChunk);
  }
  return Status::Ok();
}

std::string SnapshotWriter::Tail() const {
  std::string sums =
      crypto::Sha256Hex(meta_json_) + "  meta.json\n" + state_->sha256_hex() + "  state.bin\n";
  std::string sealed = SealSums(seal_key_, sums);
  return std::string(Padding(state_->size()), '\0') + TarHeader("SHA256SUMS", sums.size(), mtime_) +
         sums + std::string(Padding(sums.size()), '\0') +
         TarHeader("SHA256SUMS.sealed", sealed.size(), mtime_) + sealed +
         std::string(Padding(sealed.size()), '\0') + std::string(1024, '\0');
}

Result<std::string_view> SnapshotWriter::Next() {
  if (!started_) BAO_RETURN_IF_ERROR(Start());
  if (finished_) return std::string_view();
  return level_ == 0 ? NextStored() : NextDeflate();
}

namespace {

constexpr size_t kStoredMax = 65535;

// A non-final or final stored deflate block header (RFC 1951 3.2.4) for `len` bytes; every
// block here starts on a byte boundary, so the 3 header bits fill one byte.
void StoredHeader(char* p, size_t len, bool final_block) {
  p[0] = final_block ? 1 : 0;
  p[1] = static_cast<char>(len & 0xff);
  p[2] = static_cast<char>(len >> 8);
  p[3] = static_cast<char>(~len & 0xff);
  p[4] = static_cast<char>((~len >> 8) & 0xff);
}

void PutLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

Result<std::string_view> SnapshotWriter::NextStored() {
  char* out = out_.data();
  size_t pos = 0;
  if (!gzip_header_done_) {
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown), as Go's compress/gzip writes it.
    const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    std::memcpy(out, header, sizeof header);
    pos = sizeof header;
    gzip_header_done_ = true;
    crc_ = static_cast<uint32_t>(crc32(0, nullptr, 0));
  }
  while (!finished_) {
    size_t room = out_.size() - pos;
    if (phase_ == 0 || phase_ == 2) {
      size_t left = pending_.size() - pending_off_;
      if (left == 0) {
        phase_ = phase_ == 0 ? 1 : 3;
        continue;
      }
      if (room < 6) break;
      size_t n = std::min({left, kStoredMax, room - 5});
      StoredHeader(out + pos, n, false);
      std::memcpy(out + pos + 5, pending_.data() + pending_off_, n);
      crc_ = static_cast<uint32_t>(
          crc32_z(crc_, reinterpret_cast<const Bytef*>(pending_.data() + pending_off_), n));
      pending_off_ += n;
      total_in_ += n;
      pos += 5 + n;
    } else if (phase_ == 1) {
      uint64_t left = state_->size() - state_read_;
      if (left == 0) {
        crc_ = static_cast<uint32_t>(
            crc32_combine(crc_, state_->crc32(), static_cast<z_off_t>(state_->size())));
        pending_ = Tail();
        pending_off_ = 0;
        phase_ = 2;
        continue;
      }
      if (room < 6) break;
      size_t n = static_cast<size_t>(std::min<uint64_t>({left, kStoredMax, room - 5}));
      BAO_ASSIGN_OR_RETURN(size_t got, reader_->Read(out + pos + 5, n));
      if (got == 0) {
        return Internal("state ended after " + std::to_string(state_read_) + " of " +
                        std::to_string(state_->size()) + " bytes");
      }
      StoredHeader(out + pos, got, false);
      state_read_ += got;
      total_in_ += got;
      pos += 5 + got;
    } else {
      if (room < 13) break;
      StoredHeader(out + pos, 0, true);
      PutLe32(out + pos + 5, crc_);
      PutLe32(out + pos + 9, static_cast<uint32_t>(total_in_ & 0xffffffffu));
      pos += 13;
      finished_ = true;
    }
  }
  return std::string_view(out, pos);
}

Status SnapshotWriter::FillDeflateInput() {
  while (true) {
    if (phase_ == 0 || phase_ == 2) {
      if (pending_off_ < pending_.size()) {
        zs_.next_in = reinterpret_cast<Bytef*>(pending_.data() + pending_off_);
        zs_.avail_in = static_cast<uInt>(pending_.size() - pending_off_);
        pending_off_ = pending_.size();
        return Status::Ok();
      }
      phase_ = phase_ == 0 ? 1 : 3;
    } else if (phase_ == 1) {
      BAO_ASSIGN_OR_RETURN(size_t n, reader_->Read(in_.data(), in_.size()));
      if (n > 0) {
        state_read_ += n;
        zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
        zs_.avail_in = static_cast<uInt>(n);
        return Status::Ok();
      }
      if (state_read_ != state_->size()) {
        return Internal("state ended after " + std::to_string(state_read_) + " of " +
                        std::to_string(state_->size()) + " bytes");
      }
      pending_ = Tail();
      pending_off_ = 0;
      phase_ = 2;
    } else {
      input_done_ = true;
      return Status::Ok();
    }
  }
}

Result<std::string_view> SnapshotWriter::NextDeflate() {
  zs_.next_out = reinterpret_cast<Bytef*>(out_.data());
  zs_.avail_out = static_cast<uInt>(out_.size());
  while (zs_.avail_out > 0 && !finished_) {
    if (zs_.avail_in == 0 && !input_done_) BAO_RETURN_IF_ERROR(FillDeflateInput());
    int rc = deflate(&zs_, input_done_ ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      finished_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Internal("deflate failed (zlib error " + std::to_string(rc) + ")");
    }
  }
  return std::string_view(out_.data(), out_.size() - zs_.avail_out);
}

// ---------------------------------------------------------------------------------------------

RestoreReceiver::RestoreReceiver(std::string temp_dir) : temp_dir_(std::move(temp_dir)) {}

RestoreReceiver::~RestoreReceiver() {
  if (inflate_ready_) inflateEnd(&zs_);
  if (spool_fd_ >= 0) close(spool_fd_);
  if (!spool_path_.empty()) unlink(spool_path_.c_str());
}

namespace {

// Go's compress/gzip and compress/flate wording for what zlib reports.
std::string GoInflateError(const char* zlib_msg, int rc) {
  std::string msg = zlib_msg != nullptr ? zlib_msg : "zlib error " + std::to_string(rc);
  if (msg == "incorrect data check" || msg == "incorrect length check") {
    return "gzip: invalid checksum";
  }
  return "flate: corrupt input (" + msg + ")";
}

}  // namespace

Status RestoreReceiver::Write(std::string_view data) {
  body_bytes_ += data.size();
  if (!error_.ok() || TarEnded()) return error_;
  if (!inflate_ready_) {
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) return error_ = Internal("inflateInit2 failed");
    if (inflateGetHeader(&zs_, &gz_head_) != Z_OK) return error_ = Internal("inflateGetHeader");
    inflate_ready_ = true;
    out_.resize(256 << 10);
  }
  if (gzip_done_) {
    // Go's gzip reader takes what follows a member for the next member's header.
    if (!data.empty()) error_ = DataLoss("failed reading snapshot: gzip: invalid header");
    return error_;
  }
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs_.avail_in = static_cast<uInt>(data.size());
  while (zs_.avail_in > 0 && !gzip_done_) {
    zs_.next_out = reinterpret_cast<Bytef*>(out_.data());
    zs_.avail_out = static_cast<uInt>(out_.size());
    int rc = inflate(&zs_, Z_NO_FLUSH);
    size_t produced = out_.size() - zs_.avail_out;
    if (produced > 0) {
      Status st = Parse(out_.data(), produced);
      if (!st.ok()) return error_ = st;
    }
    // Once the tar archive has ended nothing more is read: a damaged gzip trailer or bytes
    // after it go unnoticed, as in OpenBao.
    if (TarEnded()) return Status::Ok();
    if (rc == Z_STREAM_END) {
      gzip_done_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      if (gz_head_.done != 1) {
        gzip_header_bad_ = true;
        return error_ = DataLoss("gzip: invalid header");
      }
      return error_ = DataLoss("failed reading snapshot: " + GoInflateError(zs_.msg, rc));
    }
  }
  if (gzip_done_ && zs_.avail_in > 0 && !TarEnded()) {
    return error_ = DataLoss("failed reading snapshot: gzip: invalid header");
  }
  return Status::Ok();
}

bool RestoreReceiver::TarEnded() const {
  if (phase_ == TarPhase::kEnd) return true;
  // A clean end of the data right at a header boundary, or after one zero block.
  return gzip_done_ && header_.empty() &&
         (phase_ == TarPhase::kHeader || phase_ == TarPhase::kSecondZero);
}

Status RestoreReceiver::Parse(const char* data, size_t len) {
  while (len > 0) {
    switch (phase_) {
      case TarPhase::kHeader:
      case TarPhase::kSecondZero: {
        size_t take = std::min(len, 512 - header_.size());
        header_.append(data, take);
        data += take;
        len -= take;
        if (header_.size() < 512) break;
        if (phase_ == TarPhase::kHeader) {
          BAO_RETURN_IF_ERROR(BeginMember());
        } else if (IsZeroBlock(header_)) {
          header_.clear();
          phase_ = TarPhase::kEnd;
          return Status::Ok();
        } else {
          return DataLoss("failed reading snapshot: archive/tar: invalid tar header");
        }
        break;
      }
      case TarPhase::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(len, member_remaining_));
        BAO_RETURN_IF_ERROR(MemberData(data, take));
        data += take;
        len -= take;
        member_remaining_ -= take;
        if (member_remaining_ == 0) {
          phase_ = padding_remaining_ > 0 ? TarPhase::kPadding : TarPhase::kHeader;
        }
        break;
      }
      case TarPhase::kPadding: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(len, padding_remaining_));
        data += take;
        len -= take;
        padding_remaining_ -= take;
        if (padding_remaining_ == 0) phase_ = TarPhase::kHeader;
        break;
      }
      case TarPhase::kEnd: return Status::Ok();
    }
  }
  return Status::Ok();
}

Status RestoreReceiver::BeginMember() {
  std::string header = std::move(header_);
  header_.clear();
  if (IsZeroBlock(header)) {
    phase_ = TarPhase::kSecondZero;
    return Status::Ok();
  }
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(header[i]);
  }
  auto stored_sum = ParseTarNumber(&header[148], 8, "checksum");
  auto size = ParseTarNumber(&header[124], 12, "size");
  if (!stored_sum.ok() || !size.ok() || *stored_sum != sum) {
    return DataLoss("failed reading snapshot: archive/tar: invalid tar header");
  }
  std::string name(header.data(), strnlen(header.data(), 100));
  if (std::memcmp(&header[257], "ustar", 5) == 0 && header[345] != '\0') {
    name = std::string(&header[345], strnlen(&header[345], 155)) + "/" + name;
  }
  char type = header[156];
  member_ = name;
  member_remaining_ = *size;
  padding_remaining_ = Padding(*size);
  skip_member_ = false;
  if (type == 'x' || type == 'g') {
    // PAX extended headers: their records are not needed for the members checked here.
    skip_member_ = true;
  } else {
    bool known = std::any_of(std::begin(kMembers), std::end(kMembers),
                             [&](const char* m) { return name == m; });
    if (!known || (type != '0' && type != '\0')) {
      return DataLoss("unexpected file \"" + name + "\" in snapshot");
    }
    // Go's reader would hash a repeated member twice and fail the hash check later; the
    // imitation says so at once.
    bool duplicate = (name == "state.bin" && have_state_) ||
                     std::any_of(small_members_.begin(), small_members_.end(),
                                 [&](const auto& m) { return m.first == name; });
    if (duplicate) return DataLoss("failed reading snapshot: \"" + name + "\" appears twice");
    if (name == "state.bin") {
      BAO_RETURN_IF_ERROR(OpenSpool());
      have_state_ = true;
      state_size_ = *size;
    } else {
      if (*size >= kMaxSmallMember) {
        return DataLoss(std::string(name == "meta.json" ? "failed to read snapshot metadata"
                                                        : "failed to read snapshot hashes") +
                        ": read max specified bytes (" + std::to_string(kMaxSmallMember) +
                        ") without EOF - possible truncation");
      }
      small_members_.emplace_back(name, std::string());
    }
  }
  phase_ = *size > 0 ? TarPhase::kData
                     : (padding_remaining_ > 0 ? TarPhase::kPadding : TarPhase::kHeader);
  if (*size == 0 && name == "state.bin") state_sha_ = state_hash_.FinishHex();
  return Status::Ok();
}

Status RestoreReceiver::OpenSpool() {
  char tmpl_buf[4096];
  std::snprintf(tmpl_buf, sizeof tmpl_buf, "%s/restore-XXXXXX", temp_dir_.c_str());
  spool_fd_ = mkostemp(tmpl_buf, O_CLOEXEC);
  if (spool_fd_ < 0) {
    return Internal(std::string("cannot create a spool file in ") + temp_dir_ + ": " +
                    std::strerror(errno));
  }
  spool_path_ = tmpl_buf;
  return Status::Ok();
}

Status RestoreReceiver::MemberData(const char* data, size_t len) {
  if (skip_member_) return Status::Ok();
  if (member_ == "state.bin") {
    state_hash_.Update(std::string_view(data, len));
    state_crc_ = crc32_z(state_crc_, reinterpret_cast<const Bytef*>(data), len);
    size_t done = 0;
    while (done < len) {
      ssize_t w = write(spool_fd_, data + done, len - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Internal(std::string("writing the spool file: ") + std::strerror(errno));
      done += static_cast<size_t>(w);
    }
    if (member_remaining_ == len) state_sha_ = state_hash_.FinishHex();
    return Status::Ok();
  }
  small_members_.back().second.append(data, len);
  return Status::Ok();
}

namespace {

// OpenBao's hashList.DecodeAndVerify (physical/raft/snapshot/archive.go): every line of the
// list must name meta.json or state.bin with the right hash, and both must be listed.
Status DecodeAndVerify(const std::string& list, const std::map<std::string, std::string>& hashes) {
  std::set<std::string> seen;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t eol = list.find('\n', pos);
    std::string line = list.substr(pos, eol == std::string::npos ? eol : eol - pos);
    pos = eol == std::string::npos ? list.size() : eol + 1;
    size_t sep = line.find("  ");
    if (sep == std::string::npos || sep == 0 || sep + 2 >= line.size() ||
        !crypto::IsLowerHex(line.substr(0, sep), sep)) {
      return DataLoss("malformed line in the hash list");
    }
    std::string name = line.substr(sep + 2);
    auto it = hashes.find(name);
    if (it == hashes.end()) return DataLoss("list missing hash for \"" + name + "\"");
    if (line.substr(0, sep) != it->second) {
      return DataLoss("hash check failed for \"" + name + "\"");
    }
    seen.insert(name);
  }
  for (const auto& [name, hex] : hashes) {
    if (seen.count(name) == 0) return DataLoss("file missing for \"" + name + "\"");
  }
  return Status::Ok();
}

Status ReadFailure(const Status& st) {
  return DataLoss("failed to read snapshot file: " + st.message());
}

}  // namespace

Result<RestoredSnapshot> RestoreReceiver::Finish(const std::string* seal_key) {
  if (!error_.ok()) {
    if (error_.code() != Code::kDataLoss) return error_;  // the spool file, zlib set-up
    if (gzip_header_bad_) return DataLoss("failed to decompress snapshot: " + error_.message());
    return ReadFailure(error_);
  }
  if (!TarEnded()) {
    if (!inflate_ready_ || gz_head_.done != 1) {
      return DataLoss(std::string("failed to decompress snapshot: ") +
                      (body_bytes_ == 0 ? "EOF" : "unexpected EOF"));
    }
    if ((phase_ == TarPhase::kData || phase_ == TarPhase::kPadding) && member_ == "state.bin") {
      return ReadFailure(DataLoss("failed to read or write snapshot data: unexpected EOF"));
    }
    return ReadFailure(DataLoss("failed reading snapshot: unexpected EOF"));
  }
  std::map<std::string, std::string> small(small_members_.begin(), small_members_.end());
  nlohmann::json meta = nlohmann::json::object();
  if (small.count("meta.json") != 0) {
    meta = nlohmann::json::parse(small["meta.json"], nullptr, false);
    if (meta.is_discarded() || !meta.is_object()) {
      return ReadFailure(DataLoss("failed to decode snapshot metadata: invalid JSON"));
    }
  }
  // What OpenBao computes while reading: an absent member hashes as empty.
  std::map<std::string, std::string> hashes = {
      {"meta.json", crypto::Sha256Hex(small["meta.json"])},
      {"state.bin", have_state_ ? state_sha_ : crypto::Sha256Hex("")}};
  if (seal_key != nullptr) {
    auto opened = OpenSums(*seal_key, small["SHA256SUMS.sealed"]);
    if (!opened) return InvalidArgument(kOtherClusterMessage);
    Status st = DecodeAndVerify(*opened, hashes);
    if (!st.ok()) {
      return ReadFailure(DataLoss("failed checking integrity of snapshot: " + st.message()));
    }
  }
  Status st = DecodeAndVerify(small["SHA256SUMS"], hashes);
  if (!st.ok()) {
    return ReadFailure(DataLoss("failed checking integrity of snapshot: " + st.message()));
  }
  // Beyond OpenBao, which only finds these while applying the snapshot, after its 204.
  for (const char* field : {"Size", "Index", "Term"}) {
    if (!meta.contains(field) || !meta[field].is_number_unsigned()) {
      return ReadFailure(DataLoss(std::string("meta.json has no unsigned integer ") + field));
    }
  }
  uint64_t size = meta["Size"].get<uint64_t>();
  if (size != state_size_) {
    return ReadFailure(DataLoss("state.bin has " + std::to_string(state_size_) +
                                " bytes but meta.json says Size " + std::to_string(size)));
  }
  if (!have_state_) BAO_RETURN_IF_ERROR(OpenSpool());
  if (fsync(spool_fd_) != 0) {
    return Internal(std::string("fsync of the spool file: ") + std::strerror(errno));
  }
  close(spool_fd_);
  spool_fd_ = -1;
  RestoredSnapshot out;
  out.state = State::AdoptFile(std::move(spool_path_), state_size_, hashes["state.bin"],
                               static_cast<uint32_t>(state_crc_));
  spool_path_.clear();
  out.index = meta["Index"].get<uint64_t>();
  out.term = meta["Term"].get<uint64_t>();
  if (meta.contains("ID") && meta["ID"].is_string()) out.id = meta["ID"].get<std::string>();
  return out;
}

}  // namespace bao::testserver
