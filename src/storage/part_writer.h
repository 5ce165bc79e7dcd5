// Cuts a byte stream into fixed-size parts and uploads up to `concurrency` of them at once on
// worker threads: the engine behind S3 multipart uploads and Azure block uploads. At most
// max(2, concurrency) parts are in memory, the one filling included: with concurrency 3, two
// parts upload while the third fills, and when all three are uploading the next part waits for
// one of them (Append() blocks, which holds the stream back). With concurrency 1, one part
// uploads while the next fills. Memory is therefore part_size x max(2, concurrency).
// A part's checksum (CRC-32C for S3, MD5 for Azure) is computed as its bytes are appended, while
// they are still in the processor's cache: over the finished multi-MiB part it would read every
// byte back from memory, which costs about as much as the copy itself.
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

#include "common/context.h"
#include "common/status.h"
#include "crypto/crypto.h"

namespace bao::storage {

class ParallelPartWriter {
 public:
  // Which checksum of each part the writer computes while appending.
  enum class PartSum { kNone, kCrc32c, kMd5 };
  // A part's checksum: `crc32c` (with PartSum::kCrc32c; 0 otherwise) or `md5_base64` (with
  // PartSum::kMd5; empty otherwise).
  struct PartSums {
    uint32_t crc32c = 0;
    std::string md5_base64;
  };

  // Uploads part `number` (1-based, in stream order) with contents `data` and checksum `sums`
  // under `ctx`, and returns the provider's identifier for it (an ETag, a block id). Called
  // concurrently from worker threads; must do its own retries and pass `ctx` to every request,
  // so that Cancel() and the writer's context stop it promptly. An error stops the whole upload.
  using UploadFn = std::function<Result<std::string>(const Context& ctx, int number,
                                                     std::string_view data, const PartSums& sums)>;

  // Computes `sum` of each part for `upload`. Parts upload under a context that is cancelled
  // when `ctx` is or when Cancel() is called, and has `ctx`'s deadline.
  ParallelPartWriter(const Context& ctx, uint64_t part_size, int concurrency, PartSum sum,
                     UploadFn upload);
  // Cancels, as Cancel().
  ~ParallelPartWriter();
  ParallelPartWriter(const ParallelPartWriter&) = delete;
  ParallelPartWriter& operator=(const ParallelPartWriter&) = delete;

  // Copies `data` into the current part; dispatches full parts, blocking while no part may be
  // filled (see above). Returns the first upload error, if any happened; ctx.Check()'s error
  // when `ctx` is done while it waits (the parts in flight go on until Cancel()); and
  // kFailedPrecondition after Finish() or Cancel().
  Status Append(const Context& ctx, std::string_view data);

  // True while no part has been dispatched and the buffered bytes fit one part: the caller may
  // upload Buffered() in a single request instead of calling Finish().
  bool NothingDispatched() const;
  std::string_view Buffered() const;

  // Dispatches the final (possibly short, possibly empty when nothing was appended) part, waits
  // for all uploads and returns their identifiers in part order, or the first error, or
  // ctx.Check()'s error when `ctx` is done while it waits.
  Result<std::vector<std::string>> Finish(const Context& ctx);

  // Waits until every dispatched part has been uploaded, without dispatching the current one,
  // and returns the first upload error, if any happened, or ctx.Check()'s error when `ctx` is
  // done while it waits. Buffered() then holds the rest of the stream, for a protocol whose
  // last part is a different request (a GCS session's final chunk); the caller sends it
  // itself and then calls Cancel() (which drops it and ends the workers).
  Status Drain(const Context& ctx);

  // Stops dispatching, cancels the uploads in flight (their context is cancelled, so they end
  // within about a second), waits for them to end, and drops buffered data. Idempotent.
  void Cancel();

  uint64_t bytes_appended() const { return appended_; }
  int parts_dispatched() const { return next_number_ - 1; }

 private:
  struct Part {
    int number;
    std::string data;
    PartSums sums;
  };

  void AddToSums(std::string_view data);  // the current part's checksum, as it fills

  Status Dispatch(const Context& ctx);  // hands current_ to the queue
  // Gives current_ a buffer once fewer than max_parts_ parts are in flight; the first upload
  // error, or ctx.Check()'s error when `ctx` is done while it waits.
  Status TakeBuffer(const Context& ctx);
  // Waits on cv_ until `done` holds, re-checking `ctx` every few milliseconds; ctx.Check()'s
  // error when it is done first.
  Status WaitFor(const Context& ctx, std::unique_lock<std::mutex>& lock,
                 const std::function<bool()>& done);
  void WorkerLoop();
  void StopWorkers();

  CancelSource stop_;  // a child of the writer's context's source; Cancel() cancels it
  Context parts_ctx_;  // what the uploads run under
  const uint64_t part_size_;
  const int concurrency_;
  const int max_parts_;  // parts in memory, the one filling included
  const PartSum sum_;
  UploadFn upload_;

  std::string current_;
  bool have_current_ = false;  // current_ holds a buffer that counts against max_parts_
  uint32_t current_crc_ = 0;
  crypto::Md5 current_md5_;
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
