#include "common/async_sink.h"

#include <cstring>

namespace bao {

AsyncSink::AsyncSink(std::function<Status(std::string_view)> consume, size_t block_size,
                     size_t max_blocks)
    : consume_(std::move(consume)),
      block_size_(std::max<size_t>(block_size, 1)),
      max_blocks_(std::max<size_t>(max_blocks, 1)) {
  gathering_ = NewBlock();
  worker_ = std::thread([this] { Loop(); });
}

AsyncSink::~AsyncSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    queue_.clear();
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
}

AsyncSink::Block AsyncSink::NewBlock() const {
  Block b;
  b.data.reset(static_cast<char*>(::operator new(block_size_, std::align_val_t(kBlockAlignment))));
  return b;
}

Status AsyncSink::Push(std::string_view chunk) {
  while (!chunk.empty()) {
    if (failed_.load(std::memory_order_relaxed)) break;
    size_t n = std::min(chunk.size(), block_size_ - gathering_.size);
    std::memcpy(gathering_.data.get() + gathering_.size, chunk.data(), n);
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
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !error_.ok() || queue_.size() < max_blocks_; });
  if (!error_.ok()) return error_;
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
  cv_.wait(lock, [&] { return !error_.ok() || (queue_.empty() && !busy_); });
  return error_;
}

void AsyncSink::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) return;
    Block block = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    bool skip = !error_.ok();
    lock.unlock();
    Status s = skip ? Status::Ok() : consume_(std::string_view(block.data.get(), block.size));
    lock.lock();
    busy_ = false;
    if (!s.ok() && error_.ok()) {
      error_ = s;
      failed_ = true;
    }
    block.size = 0;
    free_.push_back(std::move(block));
    cv_.notify_all();
  }
}

}  // namespace bao
