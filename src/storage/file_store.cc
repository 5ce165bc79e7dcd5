#include "storage/file_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/files.h"
#include "common/log.h"
#include "crypto/crypto.h"
#include "storage/errors.h"
#include "storage/upload.h"

namespace bao::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPartialMarker = ".partial-";

// An errno as a storage error: ENOENT kNotFound, EACCES/EPERM/EROFS kPermissionDenied, EEXIST
// kAlreadyExists (Reason::kConflict), anything else kUnavailable.
Status ErrnoStatus(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOENT) return StorageError(Code::kNotFound, Reason::kNotFound, msg);
  if (err == EACCES || err == EPERM || err == EROFS) {
    return StorageError(Code::kPermissionDenied, Reason::kPermissionDenied, msg);
  }
  if (err == EEXIST) return StorageError(Code::kAlreadyExists, Reason::kConflict, msg);
  return StorageError(Code::kUnavailable, Reason::kUnspecified, msg);
}

// Objects and their checksum files: readable by the owner's group, as the other providers'
// objects are by whoever holds the bucket's read credentials.
constexpr mode_t kFileMode = 0640;

Status ExistsError(const std::string& path) {
  return StorageError(
      Code::kAlreadyExists, Reason::kConflict,
      "an object already exists at " + path +
          "; backups are write-once: choose another key, or delete that one first");
}

// kAlreadyExists when something (a file, a link) is at `path`.
Status RefuseExisting(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) return ExistsError(path);
  if (errno != ENOENT) return ErrnoStatus("cannot check " + path, errno);
  return Status::Ok();
}

// A writer's temporary file: ".<name>.partial-<random>" (FileUpload) or ".<name>.tmp-<16 hex>"
// (WriteFileAtomic, for the checksum file).
bool IsTemporaryName(const std::string& name) {
  return name.starts_with(".") && (name.find(kPartialMarker) != std::string::npos ||
                                   name.find(".tmp-") != std::string::npos);
}

bool IsInternalName(const std::string& name) {
  return (name.starts_with(".") && name.find(kPartialMarker) != std::string::npos) ||
         IsChecksumKey(name) || name.find(".tmp-") != std::string::npos;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write " + path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

void FsyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}


// Object bytes are written with O_DIRECT where the file system allows it: a multi-GiB backup
// then neither evicts the host's page cache nor leaves gigabytes of dirty pages for a long
// fsync at Commit, and costs little CPU. Aligned input (as the backup pipeline's blocks are) is
// written straight from the caller's buffer; anything else is gathered into an aligned 1 MiB
// buffer first. Where O_DIRECT is refused (tmpfs on older kernels, some network file systems)
// the writes are ordinary buffered ones. Append() returns once its bytes are written (or
// gathered), so a caller that streams should call it from a thread of its own.
class FileUpload final : public Upload {
 public:
  static constexpr size_t kBlockSize = 1 << 20;  // a multiple of the direct I/O alignment

  FileUpload(std::string final_path, std::string temp_path, int fd)
      : final_path_(std::move(final_path)),
        temp_path_(std::move(temp_path)),
        fd_(fd),
        pending_(kBlockSize) {
    int flags = fcntl(fd_, F_GETFL);
    direct_ = flags >= 0 && fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0;
  }
  ~FileUpload() override {
    if (fd_ >= 0) close(fd_);
  }

  Status Append(const Context&, std::string_view data) override {
    while (!data.empty()) {
      if (pending_size_ == 0 && direct_ && data.size() >= kDirectAlignment &&
          reinterpret_cast<uintptr_t>(data.data()) % kDirectAlignment == 0) {
        size_t n = data.size() / kDirectAlignment * kDirectAlignment;
        BAO_RETURN_IF_ERROR(Write(data.substr(0, n)));
        data.remove_prefix(n);
        continue;
      }
      size_t n = std::min(data.size(), kBlockSize - pending_size_);
      std::memcpy(pending_.data() + pending_size_, data.data(), n);
      pending_size_ += n;
      data.remove_prefix(n);
      if (pending_size_ == kBlockSize) BAO_RETURN_IF_ERROR(WritePending());
    }
    return Status::Ok();
  }

  Result<ObjectInfo> Commit(const Context&, const CommitInfo& info) override {
    BAO_RETURN_IF_ERROR(WritePending());
    if (fsync(fd_) != 0) return ErrnoStatus("cannot fsync " + temp_path_, errno);
    close(fd_);
    fd_ = -1;
    // Write-once: the checksum goes first (an object is never visible without it), and neither
    // file replaces an existing object's. A checksum file without its object is a crash's
    // leftover and is replaced. (Two writers of one key at once are not supported.)
    BAO_RETURN_IF_ERROR(RefuseExisting(final_path_));
    std::string sum_path = ChecksumKey(final_path_);
    std::string sum_line = ChecksumFileContent(final_path_, info.sha256);
    Status s = WriteFileAtomic(sum_path, sum_line, kFileMode, Replace::kNo);
    if (s.code() == Code::kAlreadyExists) s = WriteFileAtomic(sum_path, sum_line, kFileMode);
    if (s.ok()) {
      s = RenameNoReplace(temp_path_, final_path_);
      if (s.code() == Code::kAlreadyExists) s = ExistsError(final_path_);
    }
    if (!s.ok()) return InStorage(s);
    temp_path_.clear();  // renamed: nothing temporary is left to remove
    FsyncDir(fs::path(final_path_).parent_path().string());

    // Read back what is stored and compare.
    struct stat st;
    std::string stored_sum;
    if (stat(final_path_.c_str(), &st) != 0) {
      s = ErrnoStatus("cannot stat " + final_path_ + " after writing", errno);
    } else if (static_cast<uint64_t>(st.st_size) != info.size) {
      s = StorageError(Code::kDataLoss, Reason::kChecksumMismatch,
                       final_path_ + " holds " + std::to_string(st.st_size) +
                           " bytes after writing " + std::to_string(info.size));
    } else {
      Result<std::string> sum = ReadFile(sum_path, 4096);
      stored_sum = sum.ok() ? ParseChecksumFile(*sum) : "";
      if (stored_sum != info.sha256) {
        s = StorageError(Code::kDataLoss, Reason::kChecksumMismatch,
                         "the checksum recorded for " + final_path_ + " does not read back");
      }
    }
    if (!s.ok()) {
      unlink(final_path_.c_str());
      unlink(sum_path.c_str());
      return s;
    }
    ObjectInfo out;
    out.size = info.size;
    out.sha256 = stored_sum;
    out.modified = TimePoint(std::chrono::seconds(st.st_mtim.tv_sec));
    return out;
  }

  void Abort(const Context&) override {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    if (!temp_path_.empty()) {
      if (unlink(temp_path_.c_str()) != 0 && errno != ENOENT) {
        log::Warn("could not remove temporary file", {{"path", temp_path_}});
      }
      temp_path_.clear();
    }
  }

 private:
  Status WritePending() {
    Status s = Write(std::string_view(pending_.data(), pending_size_));
    pending_size_ = 0;
    return s;
  }

  // Writes `block` at the end of the file: its aligned part directly while that is allowed,
  // an unaligned tail (the object's last bytes) buffered.
  Status Write(std::string_view block) {
    if (direct_) {
      std::string_view head = block.substr(0, block.size() / kDirectAlignment * kDirectAlignment);
      while (!head.empty() && direct_) {
        ssize_t n = write(fd_, head.data(), head.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EINVAL) {
          // The device wants a coarser alignment than ours: write buffered from here on.
          BAO_RETURN_IF_ERROR(StopDirect());
          break;
        }
        if (n < 0) return ErrnoStatus("cannot write " + temp_path_, errno);
        head.remove_prefix(static_cast<size_t>(n));
        block.remove_prefix(static_cast<size_t>(n));
      }
      if (!block.empty() && direct_) BAO_RETURN_IF_ERROR(StopDirect());
    }
    return WriteAll(fd_, block, temp_path_);
  }

  Status StopDirect() {
    direct_ = false;
    int flags = fcntl(fd_, F_GETFL);
    if (flags < 0 || fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) {
      return ErrnoStatus("cannot switch " + temp_path_ + " to buffered writes", errno);
    }
    return Status::Ok();
  }

  static constexpr size_t kDirectAlignment = AlignedBuffer::kAlignment;

  std::string final_path_;
  std::string temp_path_;
  int fd_;
  bool direct_ = false;
  AlignedBuffer pending_;  // bytes not yet written, fewer than kBlockSize
  size_t pending_size_ = 0;
};

class FileStore final : public Store {
 public:
  explicit FileStore(std::string root) : root_(std::move(root)) {}

  std::string Describe() const override { return "file://" + root_; }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const Context& ctx,
                                                  const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    BAO_RETURN_IF_ERROR(InStorage(ctx.Check("writing " + key)));
    fs::path final_path = fs::path(root_) / key;
    BAO_RETURN_IF_ERROR(RefuseExisting(final_path.string()));
    std::error_code ec;
    fs::create_directories(final_path.parent_path(), ec);
    if (ec) {
      return ErrnoStatus("cannot create directory " + final_path.parent_path().string(),
                         ec.value());
    }
    std::string temp = (final_path.parent_path() / ("." + final_path.filename().string() +
                                                    kPartialMarker + crypto::RandomHex(8)))
                           .string();
    int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kFileMode);
    if (fd < 0) return ErrnoStatus("cannot create " + temp, errno);
    if (fchmod(fd, kFileMode) != 0) {  // the same mode as the checksum file, whatever the umask
      Status s = ErrnoStatus("cannot set the mode of " + temp, errno);
      close(fd);
      unlink(temp.c_str());
      return s;
    }
    return NewObjectWriter(final_path.string(), ctx,
                           std::make_unique<FileUpload>(final_path.string(), temp, fd));
  }

  Status Read(const Context& ctx, const std::string& key, uint64_t offset,
              const ByteSink& sink) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    BAO_RETURN_IF_ERROR(InStorage(ctx.Check("reading " + key)));
    std::string path = (fs::path(root_) / key).string();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) {
        return StorageError(Code::kNotFound, Reason::kNotFound,
                            "no object \"" + key + "\" in " + Describe());
      }
      return ErrnoStatus("cannot open " + path, errno);
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::vector<char> buf(1 << 20);
    Status result;
    off_t pos = static_cast<off_t>(offset);
    while (true) {
      ssize_t n = pread(fd, buf.data(), buf.size(), pos);
      if (n < 0) {
        if (errno == EINTR) continue;
        result = ErrnoStatus("cannot read " + path, errno);
        break;
      }
      if (n == 0) break;
      pos += n;
      result = sink(std::string_view(buf.data(), static_cast<size_t>(n)));  // as the sink says
      if (!result.ok()) break;
      result = InStorage(ctx.Check("reading " + key));
      if (!result.ok()) break;
    }
    close(fd);
    return result;
  }

  Result<ObjectInfo> Stat(const Context& ctx, const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    BAO_RETURN_IF_ERROR(InStorage(ctx.Check("describing " + key)));
    std::string path = (fs::path(root_) / key).string();
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return StorageError(Code::kNotFound, Reason::kNotFound,
                            "no object \"" + key + "\" in " + Describe());
      }
      return ErrnoStatus("cannot stat " + path, errno);
    }
    if (!S_ISREG(st.st_mode)) {
      return StorageError(Code::kNotFound, Reason::kNotFound,
                          "\"" + key + "\" is not an object (a directory)");
    }
    ObjectInfo info;
    info.key = key;
    info.size = static_cast<uint64_t>(st.st_size);
    info.modified = TimePoint(std::chrono::seconds(st.st_mtim.tv_sec));
    Result<std::string> sum = ReadFile(ChecksumKey(path), 4096);
    if (sum.ok()) info.sha256 = ParseChecksumFile(*sum);
    return info;
  }

  Status List(const Context& ctx, const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override {
    BAO_RETURN_IF_ERROR(InStorage(ctx.Check("listing " + Describe())));
    // Walk the deepest directory the prefix names, then filter by the full prefix.
    std::string dir_part =
        prefix.substr(0, prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/'));
    fs::path start = dir_part.empty() ? fs::path(root_) : fs::path(root_) / dir_part;
    std::error_code ec;
    if (!fs::is_directory(root_, ec)) {
      return StorageError(Code::kNotFound, Reason::kNotFound,
                          "the backup directory " + root_ +
                              " does not exist (check --bucket; only a backup creates it)");
    }
    if (!fs::is_directory(start, ec)) return Status::Ok();
    std::vector<std::string> keys;
    fs::recursive_directory_iterator it(start, ec), end;
    if (ec) return ErrnoStatus("cannot list " + start.string(), ec.value());
    for (; it != end; it.increment(ec)) {
      if (ec) return ErrnoStatus("cannot list " + start.string(), ec.value());
      if (!it->is_regular_file(ec)) continue;
      std::string name = it->path().filename().string();
      if (IsInternalName(name)) continue;
      // Keys come from the path as walked, not a resolved one: a symlinked namespace or
      // cluster folder keeps its name.
      std::string key = it->path().lexically_relative(root_).generic_string();
      if (!key.starts_with(prefix)) continue;
      keys.push_back(std::move(key));
    }
    std::sort(keys.begin(), keys.end());
    for (const std::string& key : keys) {
      Result<ObjectInfo> info = Stat(ctx, key);
      if (!info.ok()) {
        if (info.status().code() == Code::kNotFound) continue;  // deleted meanwhile
        return info.status();
      }
      BAO_RETURN_IF_ERROR(fn(*info));  // the callback's error, as it is
    }
    return Status::Ok();
  }

  Status Delete(const Context& ctx, const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    BAO_RETURN_IF_ERROR(InStorage(ctx.Check("deleting " + key)));
    std::string path = (fs::path(root_) / key).string();
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("cannot delete " + path, errno);
    }
    std::string sum = ChecksumKey(path);
    if (unlink(sum.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("cannot delete " + sum, errno);
    }
    return Status::Ok();
  }

  // Temporary files by name, and checksum files whose object is gone, under the deepest
  // directory the prefix names; by mtime; symlinks are neither followed nor removed.
  Result<std::vector<Leftover>> CleanUpLeftovers(const Context& ctx, const std::string& prefix,
                                                 TimePoint older_than) override {
    BAO_RETURN_IF_ERROR(InStorage(ctx.Check("cleaning up " + Describe())));
    std::vector<Leftover> removed;
    std::string dir_part =
        prefix.substr(0, prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/'));
    fs::path start = dir_part.empty() ? fs::path(root_) : fs::path(root_) / dir_part;
    std::error_code ec;
    if (!fs::is_directory(start, ec)) return removed;  // nothing was ever written there
    struct Found {
      std::string path, key, kind;
      TimePoint mtime;
    };
    std::vector<Found> found;
    fs::recursive_directory_iterator it(start, fs::directory_options::none, ec), end;
    if (ec) return ErrnoStatus("cannot list " + start.string(), ec.value());
    for (; it != end; it.increment(ec)) {
      if (ec) return ErrnoStatus("cannot list " + start.string(), ec.value());
      std::string path = it->path().string();
      struct stat st;
      if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // no symlinks
      std::string name = it->path().filename().string();
      std::string key = it->path().lexically_relative(root_).generic_string();
      if (!key.starts_with(prefix)) continue;
      std::string kind;
      if (IsTemporaryName(name)) {
        kind = "temporary-file";
      } else if (IsChecksumKey(name)) {
        std::string object = path.substr(0, path.size() - kChecksumSuffix.size());
        struct stat ost;
        if (lstat(object.c_str(), &ost) == 0 || errno != ENOENT) continue;  // not an orphan
        kind = "orphan-checksum";
      } else {
        continue;
      }
      TimePoint mtime = TimePoint(std::chrono::duration_cast<TimePoint::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
      if (mtime >= older_than) continue;
      found.push_back({path, key, kind, mtime});
    }
    for (const Found& f : found) {
      BAO_RETURN_IF_ERROR(InStorage(ctx.Check("cleaning up " + Describe())));
      if (unlink(f.path.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus("cannot remove " + f.path, errno);
      }
      removed.push_back({f.kind, f.key, f.mtime});
    }
    return removed;
  }

 private:
  std::string root_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenFileStore(const std::string& root) {
  if (root.empty()) {
    return ConfigError(Reason::kInvalidValue,
                       "the file provider needs a root directory (--bucket)");
  }
  // Nothing is created here: a read-only command on a mistyped directory must fail, not make
  // it. NewWriter() creates the directories a backup needs.
  std::error_code ec;
  std::string abs = fs::absolute(root, ec).lexically_normal().string();
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  return std::unique_ptr<Store>(new FileStore(abs));
}

}  // namespace bao::storage
