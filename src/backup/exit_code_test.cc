#include "backup/exit_code.h"

#include <gtest/gtest.h>

namespace bao::backup {
namespace {

TEST(ExitCodeTest, TheTableGoesByStageAndCancellation) {
  EXPECT_EQ(ExitCodeFor(Status::Ok()), ExitCode::kOk);
  EXPECT_EQ(ExitCodeFor(InvalidArgument("x")), ExitCode::kConfig);  // no stage: setup
  EXPECT_EQ(ExitCodeFor(InvalidArgument("x").WithStage(Stage::kConfig)), ExitCode::kConfig);
  EXPECT_EQ(ExitCodeFor(Unauthenticated("x").WithStage(Stage::kAuth)), ExitCode::kAuth);
  EXPECT_EQ(ExitCodeFor(FailedPrecondition("x").WithStage(Stage::kLeader)),
            ExitCode::kLeaderDiscovery);
  EXPECT_EQ(ExitCodeFor(Unavailable("x").WithStage(Stage::kSnapshot)), ExitCode::kSnapshotRead);
  EXPECT_EQ(ExitCodeFor(Unavailable("x").WithStage(Stage::kStorage)), ExitCode::kStorage);
  EXPECT_EQ(ExitCodeFor(DataLoss("x").WithStage(Stage::kVerify)), ExitCode::kVerification);
  // Cancellation wins over the stage it happened in.
  EXPECT_EQ(ExitCodeFor(Error(Code::kAborted, Reason::kCancelled, "x").WithStage(Stage::kStorage)),
            ExitCode::kCancelled);
  // The code alone decides nothing: a storage-side "invalid argument" is still storage.
  EXPECT_EQ(ExitCodeFor(InvalidArgument("x").WithStage(Stage::kStorage)), ExitCode::kStorage);
}

TEST(ExitCodeTest, ErrorJsonCarriesTheDetail) {
  Status s = Error(Code::kUnavailable, Reason::kServerError, "GET x: HTTP 503")
                 .WithHttpStatus(503)
                 .WithStage(Stage::kSnapshot)
                 .WithPayload(kOpenBaoUnchanged, "true");
  nlohmann::json j = ErrorToJson(s);
  EXPECT_EQ(j["error"], "GET x: HTTP 503");
  EXPECT_EQ(j["stage"], "snapshot");
  EXPECT_EQ(j["reason"], "ServerError");
  EXPECT_EQ(j["httpStatus"], 503);
  EXPECT_EQ(j["exitCode"], 4);
  EXPECT_EQ(j["openbaoUnchanged"], true);
  nlohmann::json bare = ErrorToJson(InvalidArgument("bad"));
  EXPECT_FALSE(bare.contains("stage"));
  EXPECT_FALSE(bare.contains("httpStatus"));
  EXPECT_FALSE(bare.contains("openbaoUnchanged"));
  EXPECT_EQ(bare["exitCode"], 1);
}

}  // namespace
}  // namespace bao::backup
