#include "storage/part_writer.h"

#include <algorithm>
#include <chrono>

namespace bao::storage {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);

}  // namespace

ParallelPartWriter::ParallelPartWriter(const Context& ctx, uint64_t part_size, int concurrency,
                                       PartSum sum, UploadFn upload)
    : stop_(ctx.source()),
      parts_ctx_(ctx.deadline() ? Context(&stop_).WithDeadline(*ctx.deadline()) : Context(&stop_)),
      part_size_(part_size),
      concurrency_(std::max(1, concurrency)),
      max_parts_(std::max(2, concurrency_)),
      sum_(sum),
      upload_(std::move(upload)) {}

ParallelPartWriter::~ParallelPartWriter() {
  Cancel();
}

Status ParallelPartWriter::WaitFor(const Context& ctx, std::unique_lock<std::mutex>& lock,
                                   const std::function<bool()>& done) {
  while (!done()) {
    if (Status s = ctx.Check("waiting for parts in flight"); !s.ok()) return s;
    cv_.wait_for(lock, kPollInterval);
  }
  return Status::Ok();
}

Status ParallelPartWriter::Append(const Context& ctx, std::string_view data) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
    if (stopping_) return FailedPrecondition("the upload was already finished or cancelled");
  }
  appended_ += data.size();
  while (!data.empty()) {
    if (!have_current_) BAO_RETURN_IF_ERROR(TakeBuffer(ctx));
    size_t room = part_size_ - current_.size();
    size_t n = std::min(room, data.size());
    current_.append(data.data(), n);
    AddToSums(data.substr(0, n));
    data.remove_prefix(n);
    if (current_.size() == part_size_ && !data.empty()) {
      // Only dispatch a full part once more data follows, so the last part is never empty.
      BAO_RETURN_IF_ERROR(Dispatch(ctx));
    }
  }
  return Status::Ok();
}

void ParallelPartWriter::AddToSums(std::string_view data) {
  switch (sum_) {
    case PartSum::kNone: break;
    case PartSum::kCrc32c: current_crc_ = crypto::Crc32c(current_crc_, data); break;
    case PartSum::kMd5: current_md5_.Update(data); break;
  }
}

bool ParallelPartWriter::NothingDispatched() const {
  return next_number_ == 1;
}

std::string_view ParallelPartWriter::Buffered() const {
  return current_;
}

Status ParallelPartWriter::Dispatch(const Context& ctx) {
  std::unique_lock<std::mutex> lock(mu_);
  if (workers_.empty()) {
    for (int i = 0; i < concurrency_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }
  BAO_RETURN_IF_ERROR(
      WaitFor(ctx, lock, [&] { return in_flight_ < concurrency_ || !error_.ok(); }));
  if (!error_.ok()) return error_;
  Part part{next_number_++, std::move(current_), {}};
  if (sum_ == PartSum::kCrc32c) part.sums.crc32c = current_crc_;
  if (sum_ == PartSum::kMd5) part.sums.md5_base64 = current_md5_.FinishBase64();
  current_crc_ = 0;
  ++in_flight_;
  queue_.push_back(std::move(part));
  current_ = std::string();
  have_current_ = false;
  cv_.notify_all();
  return Status::Ok();
}

Status ParallelPartWriter::TakeBuffer(const Context& ctx) {
  std::unique_lock<std::mutex> lock(mu_);
  // The part to fill is one of the max_parts_ in memory: wait until one of those in flight is
  // done when the others all are.
  BAO_RETURN_IF_ERROR(WaitFor(ctx, lock, [&] { return in_flight_ < max_parts_ || !error_.ok(); }));
  if (!error_.ok()) return error_;
  if (!free_buffers_.empty()) {
    current_ = std::move(free_buffers_.back());
    free_buffers_.pop_back();
  } else {
    current_.reserve(part_size_);
  }
  current_.clear();
  have_current_ = true;
  return Status::Ok();
}

void ParallelPartWriter::WorkerLoop() {
  while (true) {
    Part part;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;
      part = std::move(queue_.front());
      queue_.pop_front();
      if (!error_.ok()) {  // an earlier part failed: do not upload more
        --in_flight_;
        cv_.notify_all();
        continue;
      }
    }
    Result<std::string> id = upload_(parts_ctx_, part.number, part.data, part.sums);
    std::lock_guard<std::mutex> lock(mu_);
    if (id.ok()) {
      if (ids_.size() < static_cast<size_t>(part.number)) ids_.resize(part.number);
      ids_[part.number - 1] = std::move(id).value();
    } else if (error_.ok()) {
      error_ = id.status();
    }
    part.data.clear();
    free_buffers_.push_back(std::move(part.data));
    --in_flight_;
    cv_.notify_all();
  }
}

Result<std::vector<std::string>> ParallelPartWriter::Finish(const Context& ctx) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
    if (stopping_) return FailedPrecondition("the upload was already finished or cancelled");
  }
  BAO_RETURN_IF_ERROR(Dispatch(ctx));
  {
    std::unique_lock<std::mutex> lock(mu_);
    BAO_RETURN_IF_ERROR(WaitFor(ctx, lock, [&] { return in_flight_ == 0; }));
  }
  StopWorkers();
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  return ids_;
}

Status ParallelPartWriter::Drain(const Context& ctx) {
  std::unique_lock<std::mutex> lock(mu_);
  BAO_RETURN_IF_ERROR(WaitFor(ctx, lock, [&] { return in_flight_ == 0; }));
  return error_;
}

void ParallelPartWriter::Cancel() {
  stop_.Cancel();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok() && !stopping_) {
      error_ = Error(Code::kAborted, Reason::kCancelled, "upload cancelled");
    }
    in_flight_ -= static_cast<int>(queue_.size());
    queue_.clear();
    cv_.notify_all();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
  }
  StopWorkers();
  current_.clear();
  current_.shrink_to_fit();
}

void ParallelPartWriter::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

}  // namespace bao::storage
