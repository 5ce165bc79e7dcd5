#include "common/async_sink.h"

#include <algorithm>
#include <cstring>

namespace bao {

AsyncSink::AsyncSink(std::vector<Consumer> consumers, size_t block_size, size_t max_blocks)
    : consumers_(std::move(consumers)),
      block_size_(std::max<size_t>(block_size, 1)),
      max_blocks_(std::max<size_t>(max_blocks, 1)),
      next_(consumers_.size(), 0) {
  gathering_ = NewBlock();
  for (size_t i = 0; i < consumers_.size(); ++i) workers_.emplace_back([this, i] { Loop(i); });
}

AsyncSink::~AsyncSink() {
  Stop();
}

void AsyncSink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    cv_.notify_all();
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

size_t AsyncSink::failed_consumer() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_consumer_;
}

AsyncSink::Block AsyncSink::NewBlock() const {
  Block b;
  b.data = AlignedBuffer(block_size_);
  return b;
}

Status AsyncSink::Push(std::string_view chunk) {
  while (!chunk.empty()) {
    if (failed_.load(std::memory_order_relaxed)) break;
    size_t n = std::min(chunk.size(), block_size_ - gathering_.size);
    std::memcpy(gathering_.data.data() + gathering_.size, chunk.data(), n);
    gathering_.size += n;
    chunk.remove_prefix(n);
    if (gathering_.size == block_size_) BAO_RETURN_IF_ERROR(Flush());
  }
  if (failed_.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  return Status::Ok();
}

Status AsyncSink::Flush() {
  if (gathering_.size == 0) return Status::Ok();
  if (consumers_.empty()) {
    gathering_.size = 0;
    return Status::Ok();
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !error_.ok() || closing_ || queue_.size() < max_blocks_; });
  if (!error_.ok()) return error_;
  if (closing_) return FailedPrecondition("the stream's consumers were stopped");
  gathering_.consumers_left = consumers_.size();
  queue_.push_back(std::move(gathering_));
  if (!free_.empty()) {
    gathering_ = std::move(free_.back());
    free_.pop_back();
  } else {
    lock.unlock();
    gathering_ = NewBlock();
    lock.lock();
  }
  gathering_.size = 0;
  cv_.notify_all();
  return Status::Ok();
}

Status AsyncSink::Finish() {
  BAO_RETURN_IF_ERROR(Flush());
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !error_.ok() || closing_ || queue_.empty(); });
  if (error_.ok() && closing_) return FailedPrecondition("the stream's consumers were stopped");
  return error_;
}

void AsyncSink::Loop(size_t consumer) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return closing_ || next_[consumer] < front_seq_ + queue_.size(); });
    if (closing_) return;
    // Deque elements keep their address while others are pushed or popped at the ends.
    Block& block = queue_[next_[consumer] - front_seq_];
    bool skip = !error_.ok();
    lock.unlock();
    Status s =
        skip ? Status::Ok() : consumers_[consumer](std::string_view(block.data.data(), block.size));
    lock.lock();
    if (!s.ok() && error_.ok()) {
      error_ = s;
      error_consumer_ = consumer;
      failed_ = true;
    }
    ++next_[consumer];
    --block.consumers_left;
    while (!queue_.empty() && queue_.front().consumers_left == 0) {
      queue_.front().size = 0;
      free_.push_back(std::move(queue_.front()));
      queue_.pop_front();
      ++front_seq_;
    }
    cv_.notify_all();
  }
}

}  // namespace bao
