// Shared fixture for tests that run the bao-backup binary against real OpenBao clusters
// (support/openbao.h) and a local-directory store.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "cli_fixture.h"
#include "support/openbao.h"

namespace bao::testing {

constexpr const char* kSnapshotReadPolicy =
    "path \"sys/storage/raft/snapshot\" { capabilities = [\"read\"] }";

class RealOpenBaoTest : public CliTest {
 protected:
  // A started cluster; the test fails (and returns null) when it does not come up.
  std::unique_ptr<RealBaoCluster> StartCluster(RealBaoOptions options = {}) {
    auto c = std::make_unique<RealBaoCluster>(options);
    Status s = c->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return nullptr;
    return c;
  }

  // The file-store target arguments for backups of ns/<cluster>.
  std::vector<std::string> Target(const std::string& cluster = "bao") {
    return {"--provider",  "file", "--bucket",  store_.path(),
            "--namespace", "ns",   "--cluster", cluster};
  }

  RunResult Backup(const std::vector<std::string>& addrs, const std::string& token,
                   std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"backup"};
    for (const std::string& a : addrs) args.insert(args.end(), {"--bao-addr", a});
    std::vector<std::string> t = Target();
    args.insert(args.end(), t.begin(), t.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args, {{"BAO_TOKEN", token}});
  }

  // Backs up `c` through `node` with its root token; returns the key ("" on failure).
  std::string BackupWithRoot(RealBaoCluster* c, int node = 0) {
    RunResult r = Backup({c->Url(node)}, c->root_token());
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return LastJson(r).value("key", "");
  }

  RunResult Restore(const std::vector<std::string>& addrs, const std::string& token,
                    std::vector<std::string> extra) {
    std::vector<std::string> args = {"restore", "--yes"};
    for (const std::string& a : addrs) args.insert(args.end(), {"--bao-addr", a});
    std::vector<std::string> t = Target();
    args.insert(args.end(), t.begin(), t.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args, {{"BAO_TOKEN", token}});
  }

  std::string ObjectPath(const std::string& key) const { return store_.path() + "/" + key; }

  // Member names of the gzip'd tar at `path`, in order ("" entries on a read error).
  static std::vector<std::string> ArchiveMembers(const std::string& path) {
    std::vector<std::string> names;
    archive* a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
      archive_read_free(a);
      return {""};
    }
    archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK)
      names.push_back(archive_entry_pathname(e));
    archive_read_free(a);
    return names;
  }

  TempDir store_;
};

}  // namespace bao::testing
