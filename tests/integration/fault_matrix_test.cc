// The fault matrix (issue 15): the real `bao-backup backup` with HttpFaultProxy between it and
// one peer, for every target: the OpenBao test server for the `file` target (which has no
// network of its own), MinIO for S3, fake-gcs-server for GCS, Azurite for Azure. Each cell is
// one fault (500/503/429 answers, a reset after N bytes, a stall, a trickle, a response cut
// after its head) either transient (the first K matching requests) or persistent (every one).
// A transient fault must end in a stored backup that `verify` accepts, with the retry in the
// log; a persistent one in a clean failure: the right exit code, stage and reason, within a
// bound the flags make true, nothing under a final name and no leftover the process could have
// removed (S3 multipart uploads, Azure uncommitted blobs).
//
// Where a cell's outcome is by design not a success (a snapshot stream cut after bytes arrived
// cannot be resumed), the table says so in `want_exit` for the transient column as well; where
// a persistent fault by design still ends in a stored backup (every answer to the request that
// publishes the object lost, while the peer did publish it: the writer finds the object and
// proves it its own, store.h "Unknown outcome"), in `want_exit` 0 for the persistent column.
//
// Every run passes --storage-stall-timeout 3s (storage requests fail as stalled after 3 s of
// silence instead of 60 s), so a transient stall on an upload is retried within --timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "common/context.h"
#include "common/files.h"
#include "storage/target.h"
#include "support/azurite.h"
#include "support/bao_testserver.h"
#include "support/fake_gcs.h"
#include "support/fault_proxy.h"
#include "support/minio.h"
#include "support/testing.h"

namespace bao::testing {
namespace {

using Proxy = HttpFaultProxy;
using std::chrono::milliseconds;
using std::chrono::seconds;

enum class Target { kFile, kS3, kGcs, kAzure };
enum class Fault { k500, k503, k429, kReset, kStall, kTrickle, kDrop };

struct Cell {
  Target target;
  Fault fault;
  bool persistent;
  int want_exit;                 // 0: a stored, verified backup
  const char* want_reason = "";  // the result's `reason` when want_exit != 0
  const char* skip = nullptr;    // a known product defect: why the cell is skipped
};

const char* TargetName(Target t) {
  switch (t) {
    case Target::kFile: return "File";
    case Target::kS3: return "S3";
    case Target::kGcs: return "Gcs";
    case Target::kAzure: return "Azure";
  }
  return "";
}

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::k500: return "Status500";
    case Fault::k503: return "Status503";
    case Fault::k429: return "Status429";
    case Fault::kReset: return "Reset";
    case Fault::kStall: return "Stall";
    case Fault::kTrickle: return "Trickle";
    case Fault::kDrop: return "DropAfterHeaders";
  }
  return "";
}

std::string CellName(const ::testing::TestParamInfo<Cell>& info) {
  return std::string(TargetName(info.param.target)) + "_" + FaultName(info.param.fault) + "_" +
         (info.param.persistent ? "Persistent" : "Transient");
}

constexpr int kTransientCount = 2;
constexpr uint64_t kStateSize = 6 << 20;  // two parts of 5 MiB (one S3 multipart upload)
// Bound on every run: the CLI's own deadline (--timeout) plus start-up and cleanup.
constexpr int kTimeoutSeconds = 15;
// --storage-stall-timeout: five tries of a persistently stalled upload request (3 s each, plus
// backoff) outlast --timeout, so the deadline ends those cells (reason Timeout).
constexpr int kStorageStallSeconds = 3;

class FaultMatrixTest : public CliTest, public ::testing::WithParamInterface<Cell> {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    server_ = new BaoTestServer(BaoTestServerOptions{.state_size = kStateSize});
    if (Status s = server_->Start(); !s.ok()) {
      start_error_ = "OpenBao test server: " + s.ToString();
      return;
    }
    minio_ = new MinioServer();
    if (!minio_->Start(&error) || !minio_->CreateBucket("backups", &error)) {
      start_error_ = "MinIO: " + error;
      return;
    }
    gcs_ = new FakeGcsServer();
    if (!gcs_->Start(&error) || !gcs_->CreateBucket("backups", &error)) {
      start_error_ = "fake-gcs-server: " + error;
      return;
    }
    azurite_ = new Azurite();
    if (!azurite_->Start(&error)) {
      start_error_ = "Azurite: " + error;
      return;
    }
    RunResult r = azurite_->Check({"create", "backups"});
    if (r.exit_code != 0) start_error_ = "Azurite container: " + r.err;
  }
  static void TearDownTestSuite() {
    delete azurite_;
    delete gcs_;
    delete minio_;
    delete server_;
    azurite_ = nullptr;
    gcs_ = nullptr;
    minio_ = nullptr;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    Result<int> leader = server_->LeaderIndex();
    ASSERT_TRUE(leader.ok()) << leader.status().ToString();
    leader_ = *leader;
    const Cell& c = GetParam();
    prefix_ = std::string("m-") + TargetName(c.target) + "-" + FaultName(c.fault) +
              (c.persistent ? "-p" : "-t");
    WriteText(creds_.File("accessKeyId"), minio_->access_key() + "\n");
    WriteText(creds_.File("secretAccessKey"), minio_->secret_key() + "\n");
    WriteText(creds_.File("accountKey"), std::string(kAzuriteKey) + "\n");
  }

  // The peer the proxy sits in front of.
  int UpstreamPort(Target t) const {
    switch (t) {
      case Target::kFile: return PortOf(server_->Url(leader_));
      case Target::kS3: return PortOf(minio_->endpoint());
      case Target::kGcs: return gcs_->port();
      case Target::kAzure: return PortOf(azurite_->endpoint());
    }
    return 0;
  }

  static int PortOf(const std::string& url) {
    size_t colon = url.rfind(':');
    return std::stoi(url.substr(colon + 1));
  }

  // The storage endpoint as given to the CLI: through `proxy` or straight to the peer.
  std::string Endpoint(Target t, const Proxy* proxy) const {
    switch (t) {
      case Target::kFile: return "";
      case Target::kS3: return proxy ? proxy->url() : minio_->endpoint();
      case Target::kGcs: return proxy ? proxy->url() : gcs_->url();
      case Target::kAzure:
        return proxy ? proxy->url() + "/" + kAzuriteAccount : azurite_->endpoint();
    }
    return "";
  }

  storage::TargetConfig TargetConfig(Target t, const Proxy* proxy) const {
    storage::TargetConfig tc;
    tc.path_prefix = prefix_;
    tc.part_size = storage::kMinPartSize;
    tc.concurrency = 2;
    tc.endpoint = Endpoint(t, proxy);
    switch (t) {
      case Target::kFile:
        tc.provider = "file";
        tc.bucket = files_.path();
        break;
      case Target::kS3:
        tc.provider = "s3";
        tc.bucket = "backups";
        tc.use_path_style = true;
        tc.credentials_dir = creds_.path();
        break;
      case Target::kGcs:
        tc.provider = "gcs";
        tc.bucket = "backups";
        break;
      case Target::kAzure:
        tc.provider = "azure";
        tc.bucket = "backups";
        tc.azure_storage_account = kAzuriteAccount;
        tc.credentials_dir = creds_.path();
        break;
    }
    return tc;
  }

  static std::vector<std::string> TargetArgs(const storage::TargetConfig& tc) {
    std::vector<std::string> a = {"--provider",    tc.provider,
                                  "--bucket",      tc.bucket,
                                  "--path-prefix", tc.path_prefix,
                                  "--part-size",   std::to_string(tc.part_size),
                                  "--concurrency", std::to_string(tc.concurrency),
                                  "--namespace",   "ns",
                                  "--cluster",     "bao"};
    if (!tc.endpoint.empty()) a.insert(a.end(), {"--endpoint", tc.endpoint});
    if (tc.use_path_style) a.push_back("--use-path-style");
    if (!tc.credentials_dir.empty()) a.insert(a.end(), {"--credentials-dir", tc.credentials_dir});
    if (!tc.azure_storage_account.empty()) {
      a.insert(a.end(), {"--storage-account", tc.azure_storage_account});
    }
    return a;
  }

  std::map<std::string, std::string> Env() const {
    return {{"BAO_TOKEN", server_->admin_token()},
            {"AWS_ACCESS_KEY_ID", ""},
            {"AWS_SECRET_ACCESS_KEY", ""},
            {"STORAGE_EMULATOR_HOST", ""},
            {"GOOGLE_APPLICATION_CREDENTIALS", ""}};
  }

  // The fault rule for a cell: on the snapshot GET for the file target, on the requests that
  // carry the object's bytes for the others.
  static Proxy::Rule RuleFor(const Cell& c) {
    const bool source = c.target == Target::kFile;
    const Proxy::Where body = source ? Proxy::Where::kResponseBody : Proxy::Where::kRequestBody;
    const uint64_t after = source ? 64 << 10 : 1 << 20;
    Proxy::Rule rule;
    switch (c.fault) {
      case Fault::k500:
      case Fault::k503:
      case Fault::k429: {
        int code = c.fault == Fault::k500 ? 500 : c.fault == Fault::k503 ? 503 : 429;
        switch (c.target) {
          case Target::kFile: rule = Proxy::OpenBaoStatus(code); break;
          case Target::kS3: rule = Proxy::S3Status(code); break;
          case Target::kGcs: rule = Proxy::GcsStatus(code); break;
          case Target::kAzure: rule = Proxy::AzureStatus(code); break;
        }
        break;
      }
      case Fault::kReset: rule = Proxy::ResetAfter(after, body); break;
      case Fault::kStall: rule = Proxy::StallAfter(after, body); break;
      case Fault::kTrickle:
        // 64 KiB every 20 ms (3.2 MB/s): slow, steady, never a stall.
        rule = Proxy::Trickle(64 << 10, milliseconds(20), body);
        rule.after_bytes = after;
        break;
      case Fault::kDrop: rule = Proxy::DropAfterHeaders(); break;
    }
    switch (c.target) {
      case Target::kFile: rule.On("GET", "/v1/sys/storage/raft/snapshot"); break;
      case Target::kS3:
        // Parts; a drop needs a response with a body: CompleteMultipartUpload's.
        rule.On(c.fault == Fault::kDrop ? "POST" : "PUT",
                c.fault == Fault::kDrop ? "uploadId=" : "partNumber=");
        break;
      case Target::kGcs:
        // fake-gcs-server finalizes an upload when asked for its status after a 5xx on a
        // resumable chunk (fsouza/fake-gcs-server#2354), so answers go on the session's start
        // instead; the other faults hit the chunks.
        // A reset goes there too, before the answer (the session made is lost), and so does a
        // stall (a stalled chunk is followed by a status query, which fake-gcs-server answers
        // by finalizing what it holds).
        if (c.fault == Fault::k500 || c.fault == Fault::k503 || c.fault == Fault::k429) {
          rule.On("POST", "uploadType=resumable");
        } else if (c.fault == Fault::kReset) {
          rule = Proxy::ResetAfter(0, Proxy::Where::kResponse);
          rule.On("POST", "uploadType=resumable");
        } else if (c.fault == Fault::kStall) {
          rule = Proxy::StallAfter(0, Proxy::Where::kResponse);
          rule.On("POST", "uploadType=resumable");
        } else {
          rule.On("PUT", "upload_id=");
        }
        break;
      case Target::kAzure: rule.On("PUT", "comp=block&"); break;
    }
    return rule.Times(c.persistent ? -1 : kTransientCount);
  }

  // A rule that matches the first chunk of a GCS upload and never takes effect: added before
  // a drop, it leaves that chunk alone, so the drop hits the final chunk (kStateSize makes one
  // chunk before it). fake-gcs-server answers a non-final chunk with 308 and a body, so a drop
  // there is a lost answer to a chunk that does not publish anything, and the status query
  // after it finalizes the session with what it holds (fsouza/fake-gcs-server#2354).
  static Proxy::Rule FirstGcsChunkUnharmed() {
    Proxy::Rule rule =
        Proxy::StallAfter(std::numeric_limits<uint64_t>::max() / 2, Proxy::Where::kResponse);
    rule.On("PUT", "upload_id=");
    return rule.Times(1);
  }

  // Every key under this cell's prefix, read through the project's own Store.
  std::vector<std::string> Keys(Target t) const {
    std::vector<std::string> keys;
    auto store = storage::OpenStore(TargetConfig(t, nullptr));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return keys;
    Status s = (*store)->List(Context(), prefix_, [&](const storage::ObjectInfo& o) {
      keys.push_back(o.key);
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return keys;
  }

  // What a failed run could have left and removed: S3 multipart uploads, Azure blobs with
  // uncommitted blocks only, files (temporary included) for the file target.
  std::string Leftovers(Target t) const {
    switch (t) {
      case Target::kFile: {
        std::string out;
        for (const std::string& f : Files(files_.path())) out += f + " ";
        return out;
      }
      case Target::kS3: {
        RunResult r =
            minio_->Aws({"s3api", "list-multipart-uploads", "--bucket", "backups", "--prefix",
                         prefix_, "--query", "Uploads[].Key", "--output", "text"});
        std::string out = Trim(r.out);
        return out == "None" ? "" : out;
      }
      case Target::kGcs: return "";  // sessions are not listable
      case Target::kAzure: {
        RunResult r = azurite_->Check({"listall", "backups", prefix_});
        nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
        return j.is_array() && j.empty() ? "" : r.out + r.err;
      }
    }
    return "";
  }

  static inline BaoTestServer* server_ = nullptr;
  static inline MinioServer* minio_ = nullptr;
  static inline FakeGcsServer* gcs_ = nullptr;
  static inline Azurite* azurite_ = nullptr;
  static inline std::string start_error_;
  int leader_ = 0;
  std::string prefix_;
  TempDir creds_;
  TempDir files_;
};

TEST_P(FaultMatrixTest, Backup) {
  const Cell& c = GetParam();
  if (c.skip != nullptr) GTEST_SKIP() << "known: " << c.skip;
  const bool source = c.target == Target::kFile;
  Proxy proxy(UpstreamPort(c.target));
  ASSERT_NE(proxy.port(), 0);
  if (c.target == Target::kGcs && c.fault == Fault::kDrop) proxy.AddRule(FirstGcsChunkUnharmed());
  const int rule = proxy.AddRule(RuleFor(c));

  std::vector<std::string> args = {"backup",
                                   "--timeout",
                                   std::to_string(kTimeoutSeconds) + "s",
                                   "--source-stall-timeout",
                                   "3s",
                                   "--storage-stall-timeout",
                                   std::to_string(kStorageStallSeconds) + "s",
                                   "--leader-wait",
                                   "2s",
                                   "--bao-addr",
                                   source ? proxy.url() : server_->Url(leader_)};
  const storage::TargetConfig tc = TargetConfig(c.target, source ? nullptr : &proxy);
  std::vector<std::string> targs = TargetArgs(tc);
  args.insert(args.end(), targs.begin(), targs.end());

  auto start = std::chrono::steady_clock::now();
  RunResult r = Cli(args, Env());
  auto took = std::chrono::steady_clock::now() - start;
  std::string seen;
  for (const Proxy::Exchange& e : proxy.log()) {
    seen += e.method + " " + e.target + " " + std::to_string(e.status) +
            (e.rule >= 0 ? " [fault]" : "") + "\n";
  }
  const std::string why = Describe(r) + "\nproxy saw:\n" + seen;
  EXPECT_GT(proxy.fired(rule), 0) << "the fault never took effect\n" << why;
  EXPECT_LT(took, seconds(kTimeoutSeconds + 10)) << why;
  nlohmann::json j = LastJson(r);

  if (c.want_exit == 0) {
    ASSERT_EQ(r.exit_code, 0) << why;
    if (c.fault != Fault::kTrickle) {
      EXPECT_NE(r.err.find("retrying"), std::string::npos) << "no retry in the log\n" << why;
    }
    if (c.fault == Fault::kDrop && !source) {
      // The publishing request's answer was lost; the object found was proven this upload's.
      EXPECT_NE(r.err.find("was lost"), std::string::npos) << "no lost answer in the log\n" << why;
    }
    std::string key = j.value("key", "");
    ASSERT_FALSE(key.empty()) << why;
    EXPECT_EQ(Keys(c.target), std::vector<std::string>{key});
    // Read back straight from the peer, without the proxy.
    std::vector<std::string> vargs = {"verify", "--key", key};
    std::vector<std::string> direct = TargetArgs(TargetConfig(c.target, nullptr));
    vargs.insert(vargs.end(), direct.begin(), direct.end());
    RunResult v = Cli(vargs, Env());
    EXPECT_EQ(v.exit_code, 0) << Describe(v);
    return;
  }

  EXPECT_EQ(r.exit_code, c.want_exit) << why;
  EXPECT_EQ(j.value("exitCode", 0), c.want_exit) << j;
  EXPECT_EQ(j.value("stage", ""), source ? "snapshot" : "storage") << j;
  EXPECT_EQ(j.value("reason", ""), c.want_reason) << j;
  if (c.fault == Fault::k500 || c.fault == Fault::k503 || c.fault == Fault::k429) {
    EXPECT_EQ(j.value("httpStatus", 0), c.fault == Fault::k500   ? 500
                                        : c.fault == Fault::k503 ? 503
                                                                 : 429)
        << j;
  }
  // What the process left, checked while the proxy still holds the stalled requests: once
  // released, a request whose client gave up can still arrive whole (its body sat in the
  // client's socket buffer, the kernel delivers it after the process ended), and a Put Block
  // arriving after the abort's discard shows the key as an uncommitted blob again. The process
  // could not have removed that; the next backup's leftover cleanup does.
  EXPECT_EQ(Leftovers(c.target), "") << "a leftover the process could have removed\n" << why;
  proxy.ClearRules();  // releases stalled connections: what they deliver must publish nothing
  EXPECT_EQ(Keys(c.target), std::vector<std::string>{}) << "an object under a final name";
}

// Omitted: Azure DropAfterHeaders (Put Block and Put Block List answer without a body, so the
// fault cannot take effect on an Azure upload).
// clang-format off
const Cell kCells[] = {
    // The OpenBao source (file target). A 5xx before any byte is retried (4 tries, 1-2-4 s);
    // a stream cut or stalled after bytes arrived cannot be resumed: exit 4 by design.
    {Target::kFile, Fault::k500, false, 0},
    {Target::kFile, Fault::k500, true, 4, "ServerError"},
    {Target::kFile, Fault::k503, false, 0},
    {Target::kFile, Fault::k503, true, 4, "ServerError"},
    {Target::kFile, Fault::k429, false, 0},  // a rate-limit quota, retried like a 5xx
    {Target::kFile, Fault::k429, true, 4, "Throttled"},
    {Target::kFile, Fault::kReset, false, 4, "Unreachable"},
    {Target::kFile, Fault::kReset, true, 4, "Unreachable"},
    {Target::kFile, Fault::kStall, false, 4, "Stalled"},
    {Target::kFile, Fault::kStall, true, 4, "Stalled"},
    {Target::kFile, Fault::kTrickle, false, 0},
    {Target::kFile, Fault::kTrickle, true, 0},
    // A head without a body: no byte of the snapshot arrived, so it is retried.
    {Target::kFile, Fault::kDrop, false, 0},
    {Target::kFile, Fault::kDrop, true, 4, "Unreachable"},
    // S3 (MinIO): faults on the part uploads (the abort gets through), drops on the complete.
    // A stall on a part fails after --storage-stall-timeout and is retried.
    {Target::kS3, Fault::k500, false, 0},
    {Target::kS3, Fault::k500, true, 5, "ServerError"},
    {Target::kS3, Fault::k503, false, 0},
    {Target::kS3, Fault::k503, true, 5, "Throttled"},
    {Target::kS3, Fault::k429, false, 0},
    {Target::kS3, Fault::k429, true, 5, "Throttled"},
    {Target::kS3, Fault::kReset, false, 0},
    {Target::kS3, Fault::kReset, true, 5, "Unreachable"},
    {Target::kS3, Fault::kStall, false, 0},
    {Target::kS3, Fault::kStall, true, 5, "Timeout"},
    {Target::kS3, Fault::kTrickle, false, 0},
    {Target::kS3, Fault::kTrickle, true, 0},
    {Target::kS3, Fault::kDrop, false, 0},
    // Every Complete answer lost (retries included) while MinIO completed the upload on the
    // first: the object's ETag is this upload's multipart ETag, so the commit counts as done.
    {Target::kS3, Fault::kDrop, true, 0},
    // GCS (fake-gcs-server): status answers, resets and stalls on the session start (RuleFor;
    // a stalled start fails after --storage-stall-timeout), the other faults on the chunks.
    {Target::kGcs, Fault::k500, false, 0},
    {Target::kGcs, Fault::k500, true, 5, "ServerError"},
    {Target::kGcs, Fault::k503, false, 0},
    {Target::kGcs, Fault::k503, true, 5, "Throttled"},
    {Target::kGcs, Fault::k429, false, 0},
    {Target::kGcs, Fault::k429, true, 5, "Throttled"},
    {Target::kGcs, Fault::kReset, false, 0},
    {Target::kGcs, Fault::kReset, true, 5, "Unreachable"},
    {Target::kGcs, Fault::kStall, false, 0},
    {Target::kGcs, Fault::kStall, true, 5, "Timeout"},
    {Target::kGcs, Fault::kTrickle, false, 0},
    {Target::kGcs, Fault::kTrickle, true, 0},
    // A drop can only hit the chunks (the session start answers without a body); it is aimed
    // at the final one (FirstGcsChunkUnharmed): fake-gcs-server finalizes the object, the
    // answer is lost, and the status query after it gets 404 (fake-gcs-server forgets a
    // finalized session; real GCS answers with the object) or is lost too. The object's size
    // and CRC32C are this upload's, so the commit counts as done.
    {Target::kGcs, Fault::kDrop, false, 0},
    {Target::kGcs, Fault::kDrop, true, 0},
    // Azure (Azurite): faults on Put Block.
    {Target::kAzure, Fault::k500, false, 0},
    {Target::kAzure, Fault::k500, true, 5, "ServerError"},
    {Target::kAzure, Fault::k503, false, 0},
    {Target::kAzure, Fault::k503, true, 5, "Throttled"},
    {Target::kAzure, Fault::k429, false, 0},
    {Target::kAzure, Fault::k429, true, 5, "Throttled"},
    {Target::kAzure, Fault::kReset, false, 0},
    {Target::kAzure, Fault::kReset, true, 5, "Unreachable"},
    {Target::kAzure, Fault::kStall, false, 0},
    {Target::kAzure, Fault::kStall, true, 5, "Timeout"},
    {Target::kAzure, Fault::kTrickle, false, 0},
    {Target::kAzure, Fault::kTrickle, true, 0},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Matrix, FaultMatrixTest, ::testing::ValuesIn(kCells), CellName);

}  // namespace
}  // namespace bao::testing
