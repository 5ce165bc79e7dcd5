#include "storage/upload.h"

#include "storage/errors.h"

namespace bao::storage {
namespace {

class ManagedWriter final : public ObjectWriter {
 public:
  ManagedWriter(std::string name, const Context& writer_ctx, std::unique_ptr<Upload> upload)
      : name_(std::move(name)), writer_ctx_(writer_ctx), upload_(std::move(upload)) {}
  ~ManagedWriter() override { Abort(); }

  Status Append(const Context& ctx, std::string_view data) override {
    BAO_RETURN_IF_ERROR(Usable(ctx));
    Status s = upload_->Append(ctx, data);
    if (!s.ok()) return Fail(s);
    appended_ += data.size();
    return Status::Ok();
  }

  Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) override {
    BAO_RETURN_IF_ERROR(Usable(ctx));
    if (info.size != appended_) {
      return Fail(Error(Code::kInvalidArgument, Reason::kInvalidValue,
                        "commit of " + name_ + " claims " + std::to_string(info.size) +
                            " bytes, but " + std::to_string(appended_) + " were appended"));
    }
    Result<ObjectInfo> r = upload_->Commit(ctx, info);
    if (!r.ok()) return Fail(r.status());
    state_ = State::kCommitted;
    return r;
  }

  void Abort() override {
    if (state_ == State::kOpen) {
      error_ = StorageError(Code::kAborted, Reason::kCancelled,
                            "the upload of " + name_ + " was aborted");
      state_ = State::kFailed;
    }
    Cleanup();
  }

 private:
  enum class State { kOpen, kFailed, kCommitted };

  // Ok while the writer is open and neither context is done; else the error to return (a
  // context that ended fails the writer).
  Status Usable(const Context& ctx) {
    if (state_ == State::kFailed) return error_;
    if (state_ == State::kCommitted) {
      return StorageError(Code::kFailedPrecondition, Reason::kUnspecified,
                          "the upload of " + name_ + " is already committed");
    }
    Status c = ctx.Check("upload of " + name_);
    if (c.ok()) c = writer_ctx_.Check("upload of " + name_);
    return c.ok() ? c : Fail(c);
  }

  // Records the first error, releases provider-side state, and returns the first error.
  Status Fail(const Status& s) {
    if (state_ == State::kOpen) {
      error_ = InStorage(s);
      state_ = State::kFailed;
    }
    Cleanup();
    return error_;
  }

  void Cleanup() {
    if (cleaned_ || state_ == State::kCommitted) return;
    cleaned_ = true;
    upload_->Abort(Context::ForCleanup(kCleanupBudget));
  }

  const std::string name_;
  const Context writer_ctx_;
  std::unique_ptr<Upload> upload_;
  State state_ = State::kOpen;
  Status error_;
  uint64_t appended_ = 0;
  bool cleaned_ = false;
};

}  // namespace

std::unique_ptr<ObjectWriter> NewObjectWriter(std::string name, const Context& writer_ctx,
                                              std::unique_ptr<Upload> upload) {
  return std::make_unique<ManagedWriter>(std::move(name), writer_ctx, std::move(upload));
}

}  // namespace bao::storage
