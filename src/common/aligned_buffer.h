// A fixed-size heap buffer whose first byte is aligned to kAlignment (4096) bytes, as O_DIRECT
// I/O wants. Movable, not copyable; the contents start uninitialized.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace bao {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t capacity)
      : data_(static_cast<char*>(::operator new(capacity, std::align_val_t(kAlignment)))),
        capacity_(capacity) {}

  char* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Delete {
    void operator()(char* p) const { ::operator delete(p, std::align_val_t(kAlignment)); }
  };
  std::unique_ptr<char, Delete> data_;
  size_t capacity_ = 0;
};

}  // namespace bao
