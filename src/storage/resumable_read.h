// Bookkeeping for downloads that resume after a dropped connection: the providers' Read()
// retries a ranged GET from the first byte the reader has not yet received.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/store.h"

namespace bao::storage {

// Wraps the reader's ByteSink. Deliver() passes each chunk on and advances position(); when
// the reader refuses a chunk, its error is kept and Deliver() returns kAborted, which stops
// the HTTP transfer and is not retried. Not thread-safe: one download at a time.
class ResumableRead {
 public:
  ResumableRead(const ByteSink& sink, uint64_t offset) : sink_(sink), pos_(offset) {}

  // For http::Request::on_body.
  Status Deliver(std::string_view chunk) {
    Status s = sink_(chunk);
    if (!s.ok()) {
      reader_error_ = s;
      return Aborted("stopped by the reader");
    }
    pos_ += chunk.size();
    return Status::Ok();
  }

  // The next byte to ask for.
  uint64_t position() const { return pos_; }
  // The value of a Range header resuming at position(): "bytes=N-".
  std::string Range() const { return "bytes=" + std::to_string(pos_) + "-"; }
  // True once the reader refused a chunk; the download must then end with reader_error().
  bool reader_failed() const { return !reader_error_.ok(); }
  const Status& reader_error() const { return reader_error_; }

 private:
  const ByteSink& sink_;
  uint64_t pos_;
  Status reader_error_;
};

}  // namespace bao::storage
