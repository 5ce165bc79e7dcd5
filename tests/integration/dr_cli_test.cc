// The disaster-recovery toolbox end to end (`list`, `verify`, `restore`, `prune`): the real
// binary, two OpenBao test-server clusters with different seal keys, a local-directory store.
#include <archive.h>
#include <archive_entry.h>

#include <fstream>

#include "cli_fixture.h"

namespace bao::testing {
namespace {

class DrCliTest : public CliTest {
 protected:
  void SetUp() override {
    BaoTestServerOptions a;
    a.seal_key = "cluster-a-seal";
    a.state_size = 3 << 20;
    a.seed = 11;
    cluster_a_ = std::make_unique<BaoTestServer>(a);
    ASSERT_TRUE(cluster_a_->Start().ok());
    BaoTestServerOptions b = a;
    b.seal_key = "cluster-b-seal";
    b.seed = 22;
    cluster_b_ = std::make_unique<BaoTestServer>(b);
    ASSERT_TRUE(cluster_b_->Start().ok());
  }

  std::vector<std::string> Target() {
    return {"--provider", "file", "--bucket", store_.path(), "--namespace", "ns", "--cluster", "a"};
  }

  RunResult Do(std::vector<std::string> args, BaoTestServer* server) {
    std::vector<std::string> target = Target();
    args.insert(args.end(), target.begin(), target.end());
    if (server != nullptr) {
      args.push_back("--bao-addr");
      args.push_back(server->Url(1));
    }
    return Cli(args, {{"BAO_TOKEN", server != nullptr ? server->admin_token() : ""}});
  }

  std::string BackupA() {
    RunResult r = Do({"backup"}, cluster_a_.get());
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return LastJson(r).value("key", "");
  }

  std::string Digest(BaoTestServer* s) { return (*s->State())["digest"]; }

  // Stores `bytes` under `key` with a correct checksum file, as if bao-backup had written it.
  void PutObject(const std::string& key, const std::string& bytes) {
    std::string path = store_.path() + "/" + key;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    WriteText(path, bytes);
    WriteText(path + ".sha256", crypto::Sha256Hex(bytes) + "  " +
                                    std::filesystem::path(path).filename().string() + "\n");
  }

  // The archive at `key` re-packed with libarchive plus one extra member.
  std::string WithExtraMember(const std::string& key) {
    std::string in = ReadText(store_.path() + "/" + key), out;
    archive* r = archive_read_new();
    archive_read_support_filter_gzip(r);
    archive_read_support_format_tar(r);
    archive_read_open_memory(r, in.data(), in.size());
    archive* w = archive_write_new();
    archive_write_add_filter_gzip(w);
    archive_write_set_format_ustar(w);
    archive_write_open(
        w, &out, nullptr,
        [](archive*, void* user, const void* buf, size_t n) -> la_ssize_t {
          static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
          return static_cast<la_ssize_t>(n);
        },
        nullptr);
    archive_entry* e;
    std::vector<char> buf(1 << 16);
    while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
      archive_write_header(w, e);
      la_ssize_t n;
      while ((n = archive_read_data(r, buf.data(), buf.size())) > 0) {
        archive_write_data(w, buf.data(), static_cast<size_t>(n));
      }
    }
    archive_entry* extra = archive_entry_new();
    archive_entry_set_pathname(extra, "extra.txt");
    archive_entry_set_size(extra, 5);
    archive_entry_set_filetype(extra, AE_IFREG);
    archive_entry_set_perm(extra, 0600);
    archive_write_header(w, extra);
    archive_write_data(w, "hello", 5);
    archive_entry_free(extra);
    archive_write_close(w);
    archive_write_free(w);
    archive_read_free(r);
    return out;
  }

  TempDir store_;
  std::unique_ptr<BaoTestServer> cluster_a_, cluster_b_;
};

TEST_F(DrCliTest, ForcedRestoreIntoAnotherClusterReproducesTheState) {
  std::string key = BackupA();
  ASSERT_FALSE(key.empty());
  std::string digest_a = Digest(cluster_a_.get());
  ASSERT_NE(Digest(cluster_b_.get()), digest_a);

  // Without --force, cluster B (other seal keys) refuses the snapshot and keeps its state.
  std::string digest_b = Digest(cluster_b_.get());
  RunResult refused = Do({"restore", "--key", key, "--yes"}, cluster_b_.get());
  EXPECT_NE(refused.exit_code, 0) << Describe(refused);
  EXPECT_EQ(Digest(cluster_b_.get()), digest_b);

  RunResult forced = Do({"restore", "--latest", "--force", "--yes"}, cluster_b_.get());
  ASSERT_EQ(forced.exit_code, 0) << Describe(forced);
  EXPECT_EQ(LastJson(forced)["restored"], key);
  EXPECT_EQ(Digest(cluster_b_.get()), digest_a);
}

TEST_F(DrCliTest, SameClusterRestoreBringsTheOldStateBack) {
  std::string key = BackupA();
  std::string before = Digest(cluster_a_.get());
  ASSERT_TRUE(cluster_a_->SetState(1 << 20, 99).ok());
  ASSERT_NE(Digest(cluster_a_.get()), before);
  RunResult r = Do({"restore", "--key", key, "--yes"}, cluster_a_.get());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(Digest(cluster_a_.get()), before);
}

TEST_F(DrCliTest, RestoreNeedsConfirmationWhenNotOnATerminal) {
  std::string key = BackupA();
  ASSERT_TRUE(cluster_a_->ClearRequests().ok());
  RunResult r = Do({"restore", "--key", key}, cluster_a_.get());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--yes"), std::string::npos);
  EXPECT_TRUE(cluster_a_->Requests()->empty());
}

TEST_F(DrCliTest, DamagedObjectsFailVerifyAndAreNeverApplied) {
  std::string key = BackupA();
  std::string good = ReadText(store_.path() + "/" + key);
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x20);
  struct Damage {
    std::string name, key;
  };
  std::vector<Damage> damages = {
      {"flipped byte (recorded checksum of the good object)", key},
      {"truncated", "ns/a/2020-01-01T00-00-00Z-0000000b.snap"},
      {"extra tar member", "ns/a/2020-01-01T00-00-00Z-0000000c.snap"},
      // A valid archive OpenBao itself would accept, whose bytes are not the ones recorded:
      // only the held-back last chunk keeps it from being applied.
      {"valid snapshot with a mismatching recorded checksum",
       "ns/a/2020-01-01T00-00-00Z-0000000d.snap"},
  };
  ASSERT_TRUE(cluster_a_->SetState(2 << 20, 77).ok());
  std::string other_key = BackupA();
  std::string other = ReadText(store_.path() + "/" + other_key);
  std::filesystem::remove(store_.path() + "/" + other_key);
  std::filesystem::remove(store_.path() + "/" + other_key + ".sha256");
  PutObject(damages[3].key, other);
  WriteText(store_.path() + "/" + damages[3].key + ".sha256",
            crypto::Sha256Hex(good) + "  2020-01-01T00-00-00Z-0000000d.snap\n");
  PutObject(damages[1].key, good.substr(0, good.size() - 100));
  PutObject(damages[2].key, WithExtraMember(key));
  // Flip a byte in place, keeping the checksum recorded for the intact object.
  WriteText(store_.path() + "/" + key, flipped);

  std::string digest_b = Digest(cluster_b_.get());
  for (const Damage& d : damages) {
    RunResult v = Do({"verify", "--key", d.key}, nullptr);
    EXPECT_EQ(v.exit_code, 6) << d.name << "\n" << Describe(v);

    RunResult r = Do({"restore", "--key", d.key, "--force", "--yes"}, cluster_b_.get());
    EXPECT_EQ(r.exit_code, 6) << d.name << "\n" << Describe(r);
    EXPECT_EQ(Digest(cluster_b_.get()), digest_b) << d.name;

    ASSERT_TRUE(cluster_b_->ClearRequests().ok());
    RunResult first =
        Do({"restore", "--key", d.key, "--force", "--yes", "--verify-first"}, cluster_b_.get());
    EXPECT_EQ(first.exit_code, 6) << d.name << "\n" << Describe(first);
    EXPECT_TRUE(cluster_b_->Requests()->empty())
        << d.name << ": OpenBao was contacted: " << cluster_b_->Requests()->dump();
  }
}

TEST_F(DrCliTest, ListAndBefore) {
  // Three backups at known times, written as files the way bao-backup names them.
  std::string good = ReadText(store_.path() + "/" + BackupA());
  std::filesystem::remove_all(store_.path() + "/ns");
  for (const char* name :
       {"2026-01-01T03-00-00Z-00000001.snap", "2026-01-02T03-00-00Z-00000002.snap",
        "2026-01-03T03-00-00Z-00000003.snap"}) {
    PutObject(std::string("ns/a/") + name, good);
  }
  PutObject("ns/a/readme.txt", "not a backup");
  PutObject("ns/b/2026-01-05T03-00-00Z-00000005.snap", good);

  RunResult list = Do({"list", "-o", "json"}, nullptr);
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  nlohmann::json entries = nlohmann::json::parse(list.out);
  ASSERT_EQ(entries.size(), 3u) << list.out;
  EXPECT_EQ(entries[0]["key"], "ns/a/2026-01-03T03-00-00Z-00000003.snap");
  EXPECT_EQ(entries[0]["sha256"], crypto::Sha256Hex(good));

  RunResult before = Do({"verify", "--before", "2026-01-03T03:00:00Z"}, nullptr);
  ASSERT_EQ(before.exit_code, 0) << Describe(before);
  EXPECT_EQ(LastJson(before)["key"], "ns/a/2026-01-02T03-00-00Z-00000002.snap");
  RunResult none = Do({"verify", "--before", "2026-01-01T03:00:00Z"}, nullptr);
  EXPECT_EQ(none.exit_code, 1) << Describe(none);
  EXPECT_NE(none.out.find("older than 2026-01-01T03:00:00Z"), std::string::npos) << none.out;

  RunResult dry = Do({"prune", "--max-count", "1", "--dry-run"}, nullptr);
  ASSERT_EQ(dry.exit_code, 0) << Describe(dry);
  EXPECT_EQ(Files(store_.path()).size(), 10u);
  RunResult prune = Do({"prune", "--max-count", "1"}, nullptr);
  ASSERT_EQ(prune.exit_code, 0) << Describe(prune);
  EXPECT_EQ(LastJson(prune)["deleted"].size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(store_.path() + "/ns/a/readme.txt"));
  EXPECT_TRUE(std::filesystem::exists(store_.path() + "/ns/b/2026-01-05T03-00-00Z-00000005.snap"));
}

}  // namespace
}  // namespace bao::testing
