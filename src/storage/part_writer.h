// Cuts a byte stream into fixed-size parts and uploads up to `concurrency` of them at once on
// worker threads: the engine behind S3 multipart uploads and Azure block uploads. Memory is
// bounded by part_size x (concurrency + 1): `concurrency` parts in flight plus the one filling.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"

namespace bao::storage {

class ParallelPartWriter {
 public:
  // Uploads part `number` (1-based, in stream order) with contents `data` and returns the
  // provider's identifier for it (an ETag, a block id). Called concurrently from worker
  // threads; must do its own retries. An error stops the whole upload.
  using UploadFn = std::function<Result<std::string>(int number, std::string_view data)>;

  ParallelPartWriter(uint64_t part_size, int concurrency, UploadFn upload);
  // Waits for uploads in flight (as Cancel()).
  ~ParallelPartWriter();
  ParallelPartWriter(const ParallelPartWriter&) = delete;
  ParallelPartWriter& operator=(const ParallelPartWriter&) = delete;

  // Copies `data` into the current part; dispatches full parts, blocking while `concurrency`
  // parts are in flight. Returns the first upload error, if any happened.
  Status Append(std::string_view data);

  // True while no part has been dispatched and the buffered bytes fit one part: the caller may
  // upload Buffered() in a single request instead of calling Finish().
  bool NothingDispatched() const;
  std::string_view Buffered() const;

  // Dispatches the final (possibly short, possibly empty when nothing was appended) part, waits
  // for all uploads and returns their identifiers in part order, or the first error.
  Result<std::vector<std::string>> Finish();

  // Stops dispatching, waits for the uploads in flight to end, and drops buffered data.
  // Idempotent.
  void Cancel();

  uint64_t bytes_appended() const { return appended_; }
  int parts_dispatched() const { return next_number_ - 1; }

 private:
  struct Part {
    int number;
    std::string data;
  };

  void Dispatch();  // hands current_ to the queue
  void WorkerLoop();
  void StopWorkers();

  const uint64_t part_size_;
  const int concurrency_;
  UploadFn upload_;

  std::string current_;
  int next_number_ = 1;
  uint64_t appended_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Part> queue_;
  std::vector<std::string> free_buffers_;
  std::vector<std::string> ids_;  // index = number - 1
  int in_flight_ = 0;             // queued + uploading
  bool stopping_ = false;
  Status error_;
  std::vector<std::thread> workers_;
};

}  // namespace bao::storage
