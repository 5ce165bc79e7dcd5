#include "storage/file_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
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
  Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter("ns/c/obj.snap");
  ASSERT_TRUE(w.ok()) << w.status().message();
  for (size_t off = 0; off < data.size(); off += chunk) {
    ASSERT_TRUE((*w)->Append(std::string_view(data).substr(off, chunk)).ok());
  }
  std::string sha = crypto::Sha256Hex(data);
  Result<ObjectInfo> info = (*w)->Commit({data.size(), sha});
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, sha);

  std::string back;
  Status read = (*store)->Read("ns/c/obj.snap", 0, [&](std::string_view c) {
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
  Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter("k.snap");
  ASSERT_TRUE(w.ok());
  // 1 MiB aligned (written straight), unaligned pieces, and an aligned piece that arrives while
  // gathered bytes are pending (so it must be gathered behind them).
  std::vector<size_t> cuts = {0,       1 << 20,    (1 << 20) + 100, 2 << 20, (3 << 20) + 4096,
                              5 << 20, data.size()};
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    const char* from = (i % 2 == 0 ? aligned.data() : data.data()) + cuts[i];
    ASSERT_TRUE((*w)->Append(std::string_view(from, cuts[i + 1] - cuts[i])).ok());
  }
  Result<ObjectInfo> info = (*w)->Commit({data.size(), crypto::Sha256Hex(data)});
  ASSERT_TRUE(info.ok()) << info.status().message();
  std::string back;
  ASSERT_TRUE((*store)
                  ->Read("k.snap", 0,
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
    Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter("a/b.snap");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(data).ok());
    (*w)->Abort();
    EXPECT_FALSE((*w)->Append("more").ok());
  }
  EXPECT_TRUE(Entries(dir.path()).empty());
  {
    Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter("a/b.snap");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(data).ok());
    Result<ObjectInfo> info = (*w)->Commit({data.size() + 1, crypto::Sha256Hex(data)});
    ASSERT_FALSE(info.ok());
    EXPECT_NE(info.status().message().find("bytes but"), std::string::npos)
        << info.status().message();
  }
  EXPECT_TRUE(Entries(dir.path()).empty());
  {
    Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter("a/b.snap");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(data).ok());
  }  // destroyed without Commit
  EXPECT_TRUE(Entries(dir.path()).empty());
  Result<ObjectInfo> gone = (*store)->Stat("a/b.snap");
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace bao::storage
