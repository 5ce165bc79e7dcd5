#include "storage/file_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/aligned_buffer.h"
#include "crypto/crypto.h"

namespace bao::storage {
namespace {

namespace fs = std::filesystem;

// A fresh directory under `parent`, removed at the end of the test.
class ScratchDir {
 public:
  explicit ScratchDir(const fs::path& parent) {
    std::string pattern = (parent / "bao-file-store-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) names.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Writes `data` in `chunk`-sized appends, commits, and reads it back through the store.
void RoundTrip(const std::string& root, const std::string& data, size_t chunk) {
  SCOPED_TRACE("size " + std::to_string(data.size()) + ", chunk " + std::to_string(chunk));
  Result<std::unique_ptr<Store>> store = OpenFileStore(root);
  ASSERT_TRUE(store.ok()) << store.status().message();
  Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), "ns/c/obj.snap");
  ASSERT_TRUE(w.ok()) << w.status().message();
  for (size_t off = 0; off < data.size(); off += chunk) {
    ASSERT_TRUE((*w)->Append(Context(), std::string_view(data).substr(off, chunk)).ok());
  }
  std::string sha = crypto::Sha256Hex(data);
  Result<ObjectInfo> info = (*w)->Commit(Context(), {data.size(), sha});
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, sha);

  std::string back;
  Status read = (*store)->Read(Context(), "ns/c/obj.snap", 0, [&](std::string_view c) {
    back.append(c);
    return Status::Ok();
  });
  ASSERT_TRUE(read.ok()) << read.message();
  EXPECT_TRUE(back == data) << "read back " << back.size() << " bytes";
  EXPECT_EQ(Entries(root), (std::vector<std::string>{"ns/c/obj.snap", "ns/c/obj.snap.sha256"}));
}

// Object sizes around the writer's 1 MiB blocks and the 4 KiB direct I/O alignment, on the
// test's working file system (usually direct I/O) and on /dev/shm (tmpfs, which may refuse it
// and so takes the buffered path).
TEST(FileStoreTest, WritesEveryByteWhateverTheSizeAndChunking) {
  std::vector<fs::path> parents = {fs::temp_directory_path()};
  if (fs::is_directory("/dev/shm")) parents.emplace_back("/dev/shm");
  const size_t mib = 1 << 20;
  for (const fs::path& parent : parents) {
    SCOPED_TRACE(parent.string());
    for (size_t size : {size_t{0}, size_t{3}, size_t{4096}, mib, mib + 123, 3 * mib + mib / 2}) {
      for (size_t chunk : {size_t{1000}, size_t{65536}, 2 * mib}) {
        ScratchDir dir(parent);
        ASSERT_FALSE(dir.path().empty());
        RoundTrip(dir.path(), Pattern(size), chunk);
      }
    }
  }
}

// Aligned input is written straight from the caller's buffer, mixed here with unaligned input
// that has to be gathered first: the bytes must land in order either way.
TEST(FileStoreTest, AlignedAndUnalignedAppendsInterleave) {
  ScratchDir dir(fs::temp_directory_path());
  Result<std::unique_ptr<Store>> store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  std::string data = Pattern(5 * (1 << 20) + 777);
  AlignedBuffer aligned(data.size());
  std::memcpy(aligned.data(), data.data(), data.size());
  Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), "k.snap");
  ASSERT_TRUE(w.ok());
  // 1 MiB aligned (written straight), unaligned pieces, and an aligned piece that arrives while
  // gathered bytes are pending (so it must be gathered behind them).
  std::vector<size_t> cuts = {0,       1 << 20,    (1 << 20) + 100, 2 << 20, (3 << 20) + 4096,
                              5 << 20, data.size()};
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    const char* from = (i % 2 == 0 ? aligned.data() : data.data()) + cuts[i];
    ASSERT_TRUE((*w)->Append(Context(), std::string_view(from, cuts[i + 1] - cuts[i])).ok());
  }
  Result<ObjectInfo> info = (*w)->Commit(Context(), {data.size(), crypto::Sha256Hex(data)});
  ASSERT_TRUE(info.ok()) << info.status().message();
  std::string back;
  ASSERT_TRUE((*store)
                  ->Read(Context(), "k.snap", 0,
                         [&](std::string_view c) {
                           back.append(c);
                           return Status::Ok();
                         })
                  .ok());
  EXPECT_TRUE(back == data);
}

TEST(FileStoreTest, AbortAndFailedCommitLeaveNothing) {
  ScratchDir dir(fs::temp_directory_path());
  Result<std::unique_ptr<Store>> store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  std::string data = Pattern((2 << 20) + 5);
  {
    Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), "a/b.snap");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Context(), data).ok());
    (*w)->Abort();
    EXPECT_FALSE((*w)->Append(Context(), "more").ok());
  }
  EXPECT_TRUE(Entries(dir.path()).empty());
  {
    Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), "a/b.snap");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Context(), data).ok());
    Result<ObjectInfo> info = (*w)->Commit(Context(), {data.size() + 1, crypto::Sha256Hex(data)});
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.status().code(), Code::kInvalidArgument) << info.status().ToString();
    EXPECT_EQ(info.status().stage(), Stage::kStorage);
    // The first error sticks.
    EXPECT_EQ((*w)->Append(Context(), "x").message(), info.status().message());
    EXPECT_EQ((*w)->Commit(Context(), {data.size(), crypto::Sha256Hex(data)}).status().message(),
              info.status().message());
  }
  EXPECT_TRUE(Entries(dir.path()).empty());
  {
    Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), "a/b.snap");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Context(), data).ok());
  }  // destroyed without Commit
  EXPECT_TRUE(Entries(dir.path()).empty());
  Result<ObjectInfo> gone = (*store)->Stat(Context(), "a/b.snap");
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
}

// Commits `data` under `key`; the status of NewWriter or Commit.
Status Put(Store* store, const std::string& key, const std::string& data) {
  Result<std::unique_ptr<ObjectWriter>> w = store->NewWriter(Context(), key);
  if (!w.ok()) return w.status();
  BAO_RETURN_IF_ERROR((*w)->Append(Context(), data));
  Result<ObjectInfo> info = (*w)->Commit(Context(), {data.size(), crypto::Sha256Hex(data)});
  return info.ok() ? Status::Ok() : info.status();
}

std::vector<std::string> Keys(Store* store, const std::string& prefix) {
  std::vector<std::string> keys;
  Status s = store->List(Context(), prefix, [&](const ObjectInfo& o) {
    keys.push_back(o.key);
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.message();
  return keys;
}

TEST(FileStoreTest, BackupsAreWriteOnce) {
  ScratchDir dir(fs::temp_directory_path());
  auto store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(Put(store->get(), "ns/c/a.snap", "first").ok());
  // Refused when the writer is created...
  Result<std::unique_ptr<ObjectWriter>> again = (*store)->NewWriter(Context(), "ns/c/a.snap");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(again.status().reason(), Reason::kConflict);
  EXPECT_EQ(again.status().stage(), Stage::kStorage);
  EXPECT_NE(again.status().message().find("write-once"), std::string::npos);
  // ... and at the commit, when the object appeared meanwhile.
  Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), "ns/c/b.snap");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Context(), "second").ok());
  ASSERT_TRUE(Put(store->get(), "ns/c/b.snap", "other").ok());
  Result<ObjectInfo> late = (*w)->Commit(Context(), {6, crypto::Sha256Hex("second")});
  EXPECT_EQ(late.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(late.status().reason(), Reason::kConflict);
  Result<ObjectInfo> kept = (*store)->Stat(Context(), "ns/c/b.snap");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->sha256, crypto::Sha256Hex("other"));
  EXPECT_EQ(Entries(dir.path()), (std::vector<std::string>{"ns/c/a.snap", "ns/c/a.snap.sha256",
                                                           "ns/c/b.snap", "ns/c/b.snap.sha256"}));
  // A checksum file left without its object (a crash between the two renames) is replaced.
  fs::remove(dir.path() + "/ns/c/a.snap");
  ASSERT_TRUE(Put(store->get(), "ns/c/a.snap", "third").ok());
  EXPECT_EQ((*store)->Stat(Context(), "ns/c/a.snap")->sha256, crypto::Sha256Hex("third"));
}

TEST(FileStoreTest, NeverWritesThroughPlantedLinksAndKeepsModesConsistent) {
  ScratchDir dir(fs::temp_directory_path());
  auto store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  std::string victim = dir.path() + "/victim";
  { std::ofstream(victim) << "precious"; }
  fs::create_directories(dir.path() + "/ns/c");
  // The old temporary checksum name was predictable (pid) and opened without O_EXCL.
  fs::create_symlink(victim, dir.path() + "/ns/c/.x.snap.sha256.tmp-" + std::to_string(getpid()));
  mode_t old_umask = umask(077);
  Status put = Put(store->get(), "ns/c/x.snap", "data");
  umask(old_umask);
  ASSERT_TRUE(put.ok()) << put.message();
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  struct stat object, sum;
  ASSERT_EQ(stat((dir.path() + "/ns/c/x.snap").c_str(), &object), 0);
  ASSERT_EQ(stat((dir.path() + "/ns/c/x.snap.sha256").c_str(), &sum), 0);
  EXPECT_EQ(object.st_mode & 0777, 0640u);
  EXPECT_EQ(sum.st_mode & 0777, 0640u);

  // A link planted where the object goes is an existing object: refused, nothing followed.
  fs::create_symlink(victim, dir.path() + "/ns/c/y.snap");
  EXPECT_EQ(Put(store->get(), "ns/c/y.snap", "data").code(), Code::kAlreadyExists);
  std::ifstream again(victim);
  std::string after((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, "precious");
}

TEST(FileStoreTest, KeysComeFromThePathAsGivenThroughSymlinkedFolders) {
  ScratchDir dir(fs::temp_directory_path());
  ScratchDir elsewhere(fs::temp_directory_path());
  fs::create_directories(elsewhere.path() + "/c");
  fs::create_symlink(elsewhere.path(), dir.path() + "/ns");
  auto store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(Put(store->get(), "ns/c/2026-01-01T00-00-00Z-00000001.snap", "data").ok());
  EXPECT_EQ(Keys(store->get(), "ns/c/"),
            (std::vector<std::string>{"ns/c/2026-01-01T00-00-00Z-00000001.snap"}));
}

TEST(FileStoreTest, ReadingAMissingDirectoryFailsAndCreatesNothing) {
  ScratchDir dir(fs::temp_directory_path());
  std::string typo = dir.path() + "/typo/dir";
  auto store = OpenFileStore(typo);
  ASSERT_TRUE(store.ok());
  Status listed =
      (*store)->List(Context(), "ns/c/", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_EQ(listed.code(), Code::kNotFound);
  EXPECT_NE(listed.message().find("does not exist"), std::string::npos) << listed.message();
  EXPECT_EQ((*store)->Stat(Context(), "ns/c/x.snap").status().code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(dir.path() + "/typo"));
  // A backup creates it.
  EXPECT_TRUE(Put(store->get(), "ns/c/x.snap", "data").ok());
  EXPECT_TRUE(fs::exists(typo + "/ns/c/x.snap"));
}

TEST(FileStoreTest, ACancelledContextStopsTheWriteAndLeavesNothing) {
  ScratchDir dir(fs::temp_directory_path());
  auto store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  CancelSource source;
  Context ctx(&source);
  Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(ctx, "ns/c/x.snap");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(ctx, Pattern(3000)).ok());
  source.Cancel();
  Status s = (*w)->Append(ctx, Pattern(3000));
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  EXPECT_EQ(s.stage(), Stage::kStorage);
  EXPECT_EQ((*w)->Commit(Context(), {6000, ""}).status().reason(), Reason::kCancelled);
  EXPECT_TRUE(Entries(dir.path()).empty());
  // A cancelled context also stops reads and new writers before they start.
  EXPECT_EQ((*store)->NewWriter(ctx, "ns/c/y.snap").status().reason(), Reason::kCancelled);
  EXPECT_EQ((*store)->Stat(ctx, "ns/c/y.snap").status().code(), Code::kAborted);
}

TEST(FileStoreTest, ASinksErrorComesBackUnchanged) {
  ScratchDir dir(fs::temp_directory_path());
  auto store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(Put(store->get(), "ns/c/x.snap", "data").ok());
  Status s = (*store)->Read(Context(), "ns/c/x.snap", 0, [](std::string_view) {
    return Error(Code::kDataLoss, Reason::kChecksumMismatch, "bad").WithStage(Stage::kVerify);
  });
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_EQ(s.stage(), Stage::kVerify);
  EXPECT_EQ(s.message(), "bad");
}

// Starts writing `key` in a child process that then dies without any cleanup, as kill -9 would
// leave it: the temporary file stays.
void LeakUpload(const std::string& root, const std::string& key, const std::string& data) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Result<std::unique_ptr<Store>> store = OpenFileStore(root);
    if (!store.ok()) _exit(2);
    Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), key);
    if (!w.ok() || !(*w)->Append(Context(), data).ok()) _exit(3);
    _exit(0);  // no destructor runs: nothing is aborted
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

std::vector<std::string> Kinds(const std::vector<Leftover>& v) {
  std::vector<std::string> out;
  for (const Leftover& l : v) out.push_back(l.kind + " " + l.key);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(FileStoreTest, CleanUpRemovesOnlyThisPrefixsOldLeftovers) {
  ScratchDir dir(fs::temp_directory_path());
  ScratchDir outside(fs::temp_directory_path());
  auto store = OpenFileStore(dir.path());
  ASSERT_TRUE(store.ok());
  Context ctx;
  // Nothing written yet: nothing to clean, no error.
  Result<std::vector<Leftover>> none = (*store)->CleanUpLeftovers(ctx, "ns/c1/", TimePoint::max());
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_TRUE(none->empty());

  std::string data = Pattern((1 << 20) + 7);
  ASSERT_TRUE(Put(store->get(), "ns/c1/kept.snap", "committed").ok());
  ASSERT_TRUE(Put(store->get(), "ns/c2/other.snap", "committed").ok());
  LeakUpload(dir.path(), "ns/c1/crashed.snap", data);
  LeakUpload(dir.path(), "ns/c2/crashed.snap", data);
  LeakUpload(dir.path(), "ns/c10/crashed.snap", data);  // shares "ns/c1" but not "ns/c1/"
  const std::string c1 = dir.path() + "/ns/c1/";
  // A crash inside Commit: the checksum written, the rename not done; and one mid-way through
  // writing the checksum file.
  std::ofstream(c1 + "died.snap.sha256") << std::string(64, 'a') << "  died.snap\n";
  std::ofstream(c1 + ".died2.snap.sha256.tmp-0123456789abcdef") << "partial";
  std::ofstream(c1 + "notes.txt") << "not ours";
  std::ofstream(outside.path() + "/victim") << "must survive";
  fs::create_symlink(outside.path() + "/victim", c1 + ".evil.snap.partial-00");
  fs::create_symlink(outside.path() + "/victim", c1 + "evil.snap.sha256");
  std::vector<std::string> before = Entries(dir.path());

  // A threshold older than every leftover: nothing is removed.
  Result<std::vector<Leftover>> fresh =
      (*store)->CleanUpLeftovers(ctx, "ns/c1/", SystemClock().Now() - std::chrono::hours(1));
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  EXPECT_TRUE(fresh->empty());
  EXPECT_EQ(Entries(dir.path()), before);

  Result<std::vector<Leftover>> all = (*store)->CleanUpLeftovers(ctx, "ns/c1/", TimePoint::max());
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(all->size(), 3u);
  std::vector<std::string> kinds = Kinds(*all);
  EXPECT_EQ(kinds[0], "orphan-checksum ns/c1/died.snap.sha256");
  EXPECT_TRUE(kinds[1].starts_with("temporary-file ns/c1/.crashed.snap.partial-")) << kinds[1];
  EXPECT_EQ(kinds[2], "temporary-file ns/c1/.died2.snap.sha256.tmp-0123456789abcdef");
  for (const Leftover& l : *all) EXPECT_GT(l.started, SystemClock().Now() - std::chrono::hours(1));

  std::vector<std::string> left = Entries(dir.path());
  auto has = [&](const std::string& prefix) {
    return std::any_of(left.begin(), left.end(),
                       [&](const std::string& e) { return e.starts_with(prefix); });
  };
  EXPECT_TRUE(has("ns/c1/kept.snap.sha256"));
  EXPECT_TRUE(has("ns/c1/notes.txt"));
  EXPECT_TRUE(has("ns/c2/other.snap.sha256"));
  EXPECT_TRUE(has("ns/c2/.crashed.snap.partial-"));
  EXPECT_TRUE(has("ns/c10/.crashed.snap.partial-"));
  EXPECT_FALSE(has("ns/c1/.crashed"));
  EXPECT_FALSE(has("ns/c1/died"));
  EXPECT_FALSE(has("ns/c1/.died2"));
  EXPECT_TRUE(fs::is_symlink(c1 + ".evil.snap.partial-00"));
  EXPECT_TRUE(fs::is_symlink(c1 + "evil.snap.sha256"));
  EXPECT_TRUE(fs::exists(outside.path() + "/victim"));
  // Committed objects still read back with their checksums.
  EXPECT_FALSE((*store)->Stat(ctx, "ns/c1/kept.snap")->sha256.empty());

  // A second run finds nothing; a cancelled context stops before anything.
  EXPECT_TRUE((*store)->CleanUpLeftovers(ctx, "ns/c1/", TimePoint::max())->empty());
  CancelSource cancel;
  cancel.Cancel();
  EXPECT_EQ((*store)->CleanUpLeftovers(Context(&cancel), "ns/c2/", TimePoint::max())
                .status()
                .reason(),
            Reason::kCancelled);
  EXPECT_TRUE(fs::exists(dir.path() + "/ns/c2") && has("ns/c2/.crashed.snap.partial-"));
}

}  // namespace
}  // namespace bao::storage
