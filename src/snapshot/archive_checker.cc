#include "snapshot/archive_checker.h"

#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace bao::snapshot {
namespace {

constexpr size_t kOutChunk = 256 * 1024;
constexpr uint64_t kMaxMetaJson = 1 << 20;
constexpr uint64_t kMaxSums = 64 * 1024;
constexpr uint64_t kMaxRecord = 64 * 1024;  // PAX records and GNU long names

const char* const kMetaJson = "meta.json";
const char* const kStateBin = "state.bin";
const char* const kSums = "SHA256SUMS";
const char* const kSealed = "SHA256SUMS.sealed";

bool IsKnownMember(const std::string& name) {
  return name == kMetaJson || name == kStateBin || name == kSums || name == kSealed;
}

uint64_t KeepLimit(const std::string& name) {
  if (name == kMetaJson) return kMaxMetaJson;
  return kMaxSums;  // SHA256SUMS and SHA256SUMS.sealed
}

std::string CString(const char* p, size_t n) {
  return std::string(p, strnlen(p, n));
}

// Parses a tar numeric field: octal text or GNU base-256. False when malformed or too large.
bool ParseNumber(const char* p, size_t n, uint64_t* out) {
  auto b0 = static_cast<unsigned char>(p[0]);
  if (b0 & 0x80) {
    if (b0 & 0x40) return false;  // negative
    uint64_t v = b0 & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 55) return false;
      v = v << 8 | static_cast<unsigned char>(p[i]);
    }
    *out = v;
    return v < (uint64_t{1} << 62);
  }
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < n && p[i] != ' ' && p[i] != '\0'; ++i) {
    if (p[i] < '0' || p[i] > '7') return false;
    if (v >> 60) return false;
    v = v * 8 + static_cast<uint64_t>(p[i] - '0');
    ++digits;
  }
  for (; i < n; ++i) {
    if (p[i] != ' ' && p[i] != '\0') return false;
  }
  *out = v;
  return digits > 0;
}

}  // namespace

ArchiveChecker::ArchiveChecker() : inflate_(std::make_unique<inflate_state>()) {
  out_buf_.resize(kOutChunk);
  isal_inflate_init(inflate_.get());
  inflate_->crc_flag = ISAL_GZIP;  // parse the gzip header; verify the trailer's CRC-32 and size
}

ArchiveChecker::~ArchiveChecker() = default;

Status ArchiveChecker::Fail(Status s) {
  if (error_.ok()) error_ = std::move(s);
  return error_;
}

Status ArchiveChecker::Update(std::string_view compressed) {
  if (!error_.ok()) return error_;
  uint64_t base = report_.compressed_bytes;
  report_.compressed_bytes += compressed.size();
  if (compressed.empty()) return Status::Ok();
  if (gzip_done_) {
    return Fail(DataLoss("unexpected data after the end of the gzip stream at byte " +
                         std::to_string(base)));
  }
  inflate_state* st = inflate_.get();
  st->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(compressed.data()));
  st->avail_in = static_cast<uint32_t>(compressed.size());
  while (true) {
    st->next_out = reinterpret_cast<uint8_t*>(out_buf_.data());
    st->avail_out = static_cast<uint32_t>(out_buf_.size());
    const uint32_t avail_before = st->avail_in;
    int ret = isal_inflate(st);
    pending_archive_ =
        compressed.substr(compressed.size() - avail_before, avail_before - st->avail_in);
    size_t produced = out_buf_.size() - st->avail_out;
    if (produced > 0) {
      report_.uncompressed_bytes += produced;
      BAO_RETURN_IF_ERROR(FeedTar(std::string_view(out_buf_.data(), produced)));
    }
    hashes_.Update(pending_archive_, {});  // what no state.bin bytes came with
    pending_archive_ = {};
    uint64_t at = base + (compressed.size() - st->avail_in);
    if (ret != ISAL_DECOMP_OK) {
      std::string why = ret == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch"
                        : ret == ISAL_INVALID_WRAPPER
                            ? "not a gzip stream"
                            : "invalid deflate data (" + std::to_string(ret) + ")";
      return Fail(DataLoss("the gzip stream is corrupt near byte " + std::to_string(at) + " (" +
                           why + ")"));
    }
    if (st->block_state == ISAL_BLOCK_FINISH) {
      gzip_done_ = true;
      if (st->avail_in > 0) {
        return Fail(DataLoss("unexpected data after the end of the gzip stream at byte " +
                             std::to_string(at)));
      }
      break;
    }
    if (st->avail_in == 0 && st->avail_out != 0) break;  // needs more input
  }
  return Status::Ok();
}

Status ArchiveChecker::FeedTar(std::string_view data) {
  while (!data.empty()) {
    switch (tar_state_) {
      case TarState::kHeader: {
        size_t n = std::min(data.size(), header_.size() - header_fill_);
        std::copy_n(data.data(), n, header_.data() + header_fill_);
        header_fill_ += n;
        data.remove_prefix(n);
        if (header_fill_ == header_.size()) {
          header_fill_ = 0;
          BAO_RETURN_IF_ERROR(OnHeader());
        }
        break;
      }
      case TarState::kData: {
        uint64_t remaining =
            member_ ? member_->size - member_->seen : record_size_ - meta_body_.size();
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, data.size()));
        std::string_view chunk = data.substr(0, n);
        data.remove_prefix(n);
        if (member_) {
          if (member_->paired) {
            hashes_.Update(pending_archive_, chunk);
            pending_archive_ = {};
          } else {
            member_->sha.Update(chunk);
          }
          if (member_->keep) member_->content.append(chunk);
          member_->seen += n;
          if (member_->seen == member_->size) BAO_RETURN_IF_ERROR(OnMemberEnd());
        } else {
          meta_body_.append(chunk);
          if (meta_body_.size() == record_size_) BAO_RETURN_IF_ERROR(OnMemberEnd());
        }
        break;
      }
      case TarState::kPadding: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(padding_left_, data.size()));
        padding_left_ -= n;
        data.remove_prefix(n);
        if (padding_left_ == 0) tar_state_ = TarState::kHeader;
        break;
      }
      case TarState::kEnd: {
        if (data.find_first_not_of('\0') != std::string_view::npos) {
          return Fail(DataLoss("unexpected data after the tar end-of-archive marker"));
        }
        data = {};
        break;
      }
    }
  }
  return Status::Ok();
}

Status ArchiveChecker::OnHeader() {
  const char* h = header_.data();
  uint64_t offset = report_.uncompressed_bytes;  // approximate position, for messages
  if (std::all_of(header_.begin(), header_.end(), [](char c) { return c == '\0'; })) {
    if (!next_name_.empty() || next_size_set_) {
      return Fail(DataLoss("tar extended header is not followed by an entry"));
    }
    if (++zero_blocks_ == 2) tar_state_ = TarState::kEnd;
    return Status::Ok();
  }
  if (zero_blocks_ > 0) {
    return Fail(DataLoss("tar entry after an end-of-archive block"));
  }
  uint64_t stored_sum = 0;
  if (!ParseNumber(h + 148, 8, &stored_sum)) {
    return Fail(DataLoss("tar header has a malformed checksum field"));
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < 512; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  }
  if (sum != stored_sum) {
    return Fail(
        DataLoss("tar header checksum mismatch near uncompressed byte " + std::to_string(offset)));
  }
  if (std::string_view(h + 257, 5) != "ustar") {
    return Fail(DataLoss("not a ustar/pax tar archive (header magic missing)"));
  }
  bool posix = h[262] == '\0';  // "ustar\0" (POSIX) rather than "ustar " (GNU)
  std::string name = CString(h, 100);
  if (posix) {
    std::string prefix = CString(h + 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
  }
  uint64_t size = 0;
  if (!ParseNumber(h + 124, 12, &size)) {
    return Fail(DataLoss("tar header for \"" + name + "\" has a malformed size field"));
  }
  char type = h[156];
  if (type == 'x' || type == 'g' || type == 'L') {
    if (size > kMaxRecord) {
      return Fail(DataLoss("tar extended header claims " + std::to_string(size) +
                           " bytes, more than the " + std::to_string(kMaxRecord) + " allowed"));
    }
    meta_type_ = type;
    meta_body_.clear();
    record_size_ = size;
    tar_state_ = TarState::kData;
    if (size == 0) return OnMemberEnd();
    return Status::Ok();
  }
  if (!next_name_.empty()) name = next_name_;
  if (next_size_set_) size = next_size_;
  next_name_.clear();
  next_size_set_ = false;
  if (type != '0' && type != '\0' && type != '7') {
    return Fail(DataLoss("unexpected tar entry type '" + std::string(1, type) + "' for \"" + name +
                         "\" (a snapshot holds only regular files)"));
  }
  if (name.starts_with("./")) name.erase(0, 2);
  if (!IsKnownMember(name)) {
    return Fail(DataLoss("unexpected member \"" + name + "\" in the snapshot archive"));
  }
  if (digests_.count(name) != 0 || (member_ && member_->name == name)) {
    return Fail(DataLoss("member \"" + name + "\" appears more than once"));
  }
  auto m = std::make_unique<Member>();
  m->name = name;
  m->size = size;
  m->keep = name != kStateBin;
  m->paired = name == kStateBin && !state_bin_paired_;
  state_bin_paired_ = state_bin_paired_ || m->paired;
  if (m->keep && size > KeepLimit(name)) {
    return Fail(DataLoss("member \"" + name + "\" claims " + std::to_string(size) +
                         " bytes, more than the " + std::to_string(KeepLimit(name)) + " allowed"));
  }
  member_ = std::move(m);
  tar_state_ = TarState::kData;
  if (size == 0) return OnMemberEnd();
  return Status::Ok();
}

Status ArchiveChecker::OnMemberEnd() {
  uint64_t size;
  if (member_) {
    size = member_->size;
    report_.member_sizes[member_->name] = size;
    digests_[member_->name] = member_->paired ? hashes_.FinishHex(1) : member_->sha.FinishHex();
    if (member_->name == kMetaJson) meta_json_ = std::move(member_->content);
    if (member_->name == kSums) sums_text_ = std::move(member_->content);
    if (member_->name == kSealed) have_sealed_ = true;
    member_.reset();
  } else {
    size = record_size_;
    if (meta_type_ == 'L') {
      next_name_ = CString(meta_body_.data(), meta_body_.size());
    } else if (meta_type_ == 'x') {
      // Records: "<len> <key>=<value>\n".
      std::string_view rest = meta_body_;
      while (!rest.empty()) {
        size_t space = rest.find(' ');
        if (space == std::string_view::npos || space == 0 || space > 19) {
          return Fail(DataLoss("malformed pax extended header"));
        }
        uint64_t len = 0;
        for (char c : rest.substr(0, space)) {
          if (c < '0' || c > '9') return Fail(DataLoss("malformed pax record length"));
          len = len * 10 + static_cast<uint64_t>(c - '0');
        }
        if (len <= space + 1 || len > rest.size() || rest[len - 1] != '\n') {
          return Fail(DataLoss("malformed pax record"));
        }
        std::string_view record = rest.substr(space + 1, len - space - 2);
        size_t eq = record.find('=');
        if (eq == std::string_view::npos) return Fail(DataLoss("malformed pax record"));
        std::string_view key = record.substr(0, eq), value = record.substr(eq + 1);
        if (key == "path") {
          next_name_ = std::string(value);
        } else if (key == "size") {
          uint64_t v = 0;
          if (value.empty() || value.size() > 19) return Fail(DataLoss("malformed pax size"));
          for (char c : value) {
            if (c < '0' || c > '9') return Fail(DataLoss("malformed pax size"));
            v = v * 10 + static_cast<uint64_t>(c - '0');
          }
          next_size_ = v;
          next_size_set_ = true;
        }
        rest.remove_prefix(len);
      }
    }
    meta_body_.clear();
    meta_type_ = 0;
  }
  padding_left_ = (512 - size % 512) % 512;
  tar_state_ = padding_left_ > 0 ? TarState::kPadding : TarState::kHeader;
  return Status::Ok();
}

Status ArchiveChecker::CheckSums() {
  std::set<std::string> listed;
  std::string_view rest = sums_text_;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.size() < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*')) {
      return DataLoss("SHA256SUMS has a malformed line \"" + std::string(line.substr(0, 80)) +
                      "\"");
    }
    std::string hex(line.substr(0, 64));
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](char c) { return static_cast<char>(std::tolower(c)); });
    if (!crypto::IsLowerHex(hex, 64)) {
      return DataLoss("SHA256SUMS has a malformed checksum in \"" + std::string(line) + "\"");
    }
    std::string name(line.substr(66));
    if (name.starts_with("./")) name.erase(0, 2);
    if (name == kSums || !IsKnownMember(name)) {
      return DataLoss("SHA256SUMS lists an unexpected member \"" + name + "\"");
    }
    if (!listed.insert(name).second) {
      return DataLoss("SHA256SUMS lists \"" + name + "\" more than once");
    }
    auto it = digests_.find(name);
    if (it == digests_.end()) {
      return DataLoss("member \"" + name + "\" listed in SHA256SUMS is missing");
    }
    if (it->second != hex) {
      return DataLoss("SHA-256 of member \"" + name + "\" is " + it->second +
                      " but SHA256SUMS lists " + hex);
    }
  }
  for (const char* required : {kMetaJson, kStateBin}) {
    if (listed.count(required) == 0) {
      return DataLoss(std::string("SHA256SUMS does not list ") + required);
    }
  }
  return Status::Ok();
}

Result<ArchiveReport> ArchiveChecker::Finish() {
  if (!error_.ok()) return error_;
  if (!report_.sha256.empty()) return report_;  // finished before
  if (!gzip_done_) {
    if (member_) {
      return Fail(DataLoss("the archive is truncated: member \"" + member_->name + "\" has " +
                           std::to_string(member_->seen) + " of " + std::to_string(member_->size) +
                           " bytes and the gzip stream ends "
                           "after " +
                           std::to_string(report_.compressed_bytes) + " bytes"));
    }
    return Fail(DataLoss("the archive is truncated: the gzip stream ends after " +
                         std::to_string(report_.compressed_bytes) + " bytes without its trailer"));
  }
  if (member_) {
    return Fail(DataLoss("tar member \"" + member_->name +
                         "\" is truncated: " + std::to_string(member_->seen) + " of " +
                         std::to_string(member_->size) + " bytes"));
  }
  if (tar_state_ != TarState::kEnd) {
    return Fail(DataLoss("the tar archive has no end-of-archive marker"));
  }
  for (const char* required : {kMetaJson, kStateBin, kSums, kSealed}) {
    if (digests_.count(required) == 0) {
      return Fail(DataLoss(std::string("member \"") + required + "\" is missing"));
    }
  }
  auto meta = nlohmann::json::parse(meta_json_, nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) {
    return Fail(DataLoss("meta.json is not a JSON object"));
  }
  auto number = [&](const char* key, uint64_t* out) {
    if (!meta.contains(key) || !meta[key].is_number_unsigned()) return false;
    *out = meta[key].get<uint64_t>();
    return true;
  };
  if (!number("Size", &report_.meta.size)) {
    return Fail(DataLoss("meta.json has no numeric Size"));
  }
  number("Index", &report_.meta.index);
  number("Term", &report_.meta.term);
  if (meta.contains("ID") && meta["ID"].is_string()) report_.meta.id = meta["ID"];
  Status sums = CheckSums();
  if (!sums.ok()) return Fail(sums);
  uint64_t state_size = report_.member_sizes[kStateBin];
  if (state_size != report_.meta.size) {
    return Fail(DataLoss("state.bin holds " + std::to_string(state_size) +
                         " bytes but meta.json announces " + std::to_string(report_.meta.size)));
  }
  report_.sha256 = hashes_.FinishHex(0);
  return report_;
}

Result<ArchiveReport> CheckArchive(std::string_view compressed) {
  ArchiveChecker checker;
  BAO_RETURN_IF_ERROR(checker.Update(compressed));
  return checker.Finish();
}

}  // namespace bao::snapshot
