#include "common/pipe.h"

#include <algorithm>
#include <cstring>

namespace bao {

Status BytePipe::Write(std::string_view data) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!data.empty()) {
    cv_.wait(lock, [&] { return read_closed_ || buffer_.size() - read_pos_ < capacity_; });
    if (read_closed_) return Aborted("the reading side of the pipe was closed");
    if (read_pos_ > 0 && read_pos_ == buffer_.size()) {
      buffer_.clear();
      read_pos_ = 0;
    } else if (read_pos_ > capacity_) {
      buffer_.erase(0, read_pos_);
      read_pos_ = 0;
    }
    size_t room = capacity_ - (buffer_.size() - read_pos_);
    size_t n = std::min(room, data.size());
    buffer_.append(data.data(), n);
    data.remove_prefix(n);
    cv_.notify_all();
  }
  return Status::Ok();
}

void BytePipe::CloseWrite(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  write_closed_ = true;
  write_status_ = std::move(status);
  cv_.notify_all();
}

Result<size_t> BytePipe::Read(char* buf, size_t len) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return write_closed_ || buffer_.size() > read_pos_; });
  if (buffer_.size() == read_pos_) {
    if (!write_status_.ok()) return write_status_;
    return size_t{0};
  }
  size_t n = std::min(len, buffer_.size() - read_pos_);
  std::memcpy(buf, buffer_.data() + read_pos_, n);
  read_pos_ += n;
  cv_.notify_all();
  return n;
}

void BytePipe::CloseRead() {
  std::lock_guard<std::mutex> lock(mu_);
  read_closed_ = true;
  cv_.notify_all();
}

}  // namespace bao
