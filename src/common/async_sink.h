// Runs a byte consumer on its own thread, so two CPU-heavy stages of a stream (for example
// hashing-and-storing and archive checking) use two cores. Pushed bytes are gathered into
// blocks of `block_size` (recycled, so steady state allocates nothing) and handed over through
// a queue of at most `max_blocks`; Push() blocks while the queue is full. Push/Finish are
// called from one producer thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"

namespace bao {

class AsyncSink {
 public:
  AsyncSink(std::function<Status(std::string_view)> consume, size_t block_size = 1 << 20,
            size_t max_blocks = 4);
  // Stops the worker (dropping queued blocks) if Finish() was not called.
  ~AsyncSink();
  AsyncSink(const AsyncSink&) = delete;
  AsyncSink& operator=(const AsyncSink&) = delete;

  // Appends a copy of `chunk`. Returns the consumer's first error once one is known; ok
  // otherwise.
  Status Push(std::string_view chunk);
  // Hands over what is gathered, waits until everything was consumed, and returns the
  // consumer's first error, if any.
  Status Finish();

 private:
  Status Flush();
  void Loop();

  std::function<Status(std::string_view)> consume_;
  const size_t block_size_;
  const size_t max_blocks_;
  std::string gathering_;  // producer-owned
  std::atomic<bool> failed_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::vector<std::string> free_;
  bool busy_ = false;
  bool closing_ = false;
  Status error_;
  std::thread worker_;
};

}  // namespace bao
