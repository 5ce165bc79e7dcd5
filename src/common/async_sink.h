// Hands a byte stream to one or more consumers, each on its own thread, so CPU-heavy stages
// of a stream (archive checking, storing) run beside the producer and beside each other.
// Pushed bytes are copied once into blocks of `block_size`; every consumer sees every block, in
// order, and a block is recycled (steady state allocates nothing) once all consumers are done
// with it. At most `max_blocks` blocks are in flight; Push() blocks while that many are, which
// bounds memory to about (max_blocks + 1) x block_size. Push/Finish/Stop are called from one
// producer thread.
//
// Blocks start on a kBlockAlignment boundary and every block but the last holds exactly
// `block_size` bytes, so with a `block_size` that is a multiple of kBlockAlignment a consumer
// may hand blocks to O_DIRECT I/O without copying them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/status.h"

namespace bao {

class AsyncSink {
 public:
  static constexpr size_t kBlockAlignment = AlignedBuffer::kAlignment;
  using Consumer = std::function<Status(std::string_view block)>;

  explicit AsyncSink(std::vector<Consumer> consumers, size_t block_size = 1 << 20,
                     size_t max_blocks = 4);
  // Stop()s.
  ~AsyncSink();
  AsyncSink(const AsyncSink&) = delete;
  AsyncSink& operator=(const AsyncSink&) = delete;

  // Appends a copy of `chunk`. Returns the first consumer error once one is known (later blocks
  // are then no longer consumed); ok otherwise.
  Status Push(std::string_view chunk);
  // Hands over what is gathered, waits until every consumer has consumed everything, and
  // returns the first consumer error, if any.
  Status Finish();
  // Drops what is queued, waits for blocks being consumed, and ends the threads: afterwards no
  // consumer runs again. Idempotent.
  void Stop();
  // The index (into the constructor's vector) of the consumer whose error Push()/Finish()
  // returned; meaningful only after one returned an error.
  size_t failed_consumer() const;

 private:
  struct Block {
    AlignedBuffer data;
    size_t size = 0;
    size_t consumers_left = 0;
  };

  Block NewBlock() const;
  Status Flush();
  void Loop(size_t consumer);

  const std::vector<Consumer> consumers_;
  const size_t block_size_;
  const size_t max_blocks_;
  Block gathering_;  // producer-owned
  std::atomic<bool> failed_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Block> queue_;  // blocks in flight; front() has sequence number front_seq_
  uint64_t front_seq_ = 0;
  std::vector<uint64_t> next_;  // per consumer: the sequence number of its next block
  std::vector<Block> free_;
  bool closing_ = false;
  Status error_;
  size_t error_consumer_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace bao
