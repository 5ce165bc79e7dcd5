// Runs a byte consumer on its own thread, so two CPU-heavy stages of a stream (for example
// hashing-and-storing and archive checking) use two cores, or so a slow writer (a disk) does
// not stall the producer. Pushed bytes are gathered into blocks of `block_size` (recycled, so
// steady state allocates nothing) and handed over through a queue of at most `max_blocks`;
// Push() blocks while the queue is full. Push/Finish are called from one producer thread.
//
// Blocks start on a kBlockAlignment boundary and every block but the last holds exactly
// `block_size` bytes, so with a `block_size` that is a multiple of kBlockAlignment a consumer
// may hand full blocks to O_DIRECT I/O.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"

namespace bao {

class AsyncSink {
 public:
  static constexpr size_t kBlockAlignment = 4096;

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
  struct AlignedDelete {
    void operator()(char* p) const { ::operator delete(p, std::align_val_t(kBlockAlignment)); }
  };
  struct Block {
    std::unique_ptr<char, AlignedDelete> data;
    size_t size = 0;
  };

  Block NewBlock() const;
  Status Flush();
  void Loop();

  std::function<Status(std::string_view)> consume_;
  const size_t block_size_;
  const size_t max_blocks_;
  Block gathering_;  // producer-owned
  std::atomic<bool> failed_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Block> queue_;
  std::vector<Block> free_;
  bool busy_ = false;
  bool closing_ = false;
  Status error_;
  std::thread worker_;
};

}  // namespace bao
