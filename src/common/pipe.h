// A bounded byte pipe between two threads: a producer that pushes (a storage download) and a
// consumer that pulls (an HTTP request body). Either side can end it with an error, which the
// other side then sees. Memory is bounded by `capacity`. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bao {

class BytePipe {
 public:
  explicit BytePipe(size_t capacity) : capacity_(capacity) {}

  // Producer: appends `data`, blocking while the pipe is full. kAborted once the consumer has
  // given up (CloseRead).
  Status Write(std::string_view data);
  // Producer: no more data. With an error, the consumer's next Read returns it instead of EOF.
  void CloseWrite(Status status = Status::Ok());

  // Consumer: copies up to `len` bytes into `buf`, blocking while empty. Returns 0 at a clean
  // end, or the producer's error.
  Result<size_t> Read(char* buf, size_t len);
  // Consumer: stop; unblocks and fails the producer's Write calls.
  void CloseRead();

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  size_t read_pos_ = 0;
  bool write_closed_ = false;
  bool read_closed_ = false;
  Status write_status_;
};

}  // namespace bao
