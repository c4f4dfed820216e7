// IovCursor: the part of an iovec array not yet transferred, for calls that
// must go on after a partial transfer (a blocking writev, a file read that
// came back short). It copies the caller's array only once a partial
// transfer happens, and never modifies it.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <vector>

namespace coil::hook {

class IovCursor {
 public:
  IovCursor(const iovec* iov, int count) noexcept : iov_(iov), count_(count) {}

  const iovec* data() const noexcept { return iov_; }
  int count() const noexcept { return count_; }

  // total() is the number of bytes left.
  std::size_t total() const noexcept {
    std::size_t sum = 0;
    for (int i = 0; i < count_; ++i) sum += iov_[i].iov_len;
    return sum;
  }

  // advance() drops the first n bytes.
  void advance(std::size_t n) {
    if (own_.empty()) own_.assign(iov_, iov_ + count_);
    std::size_t first = static_cast<std::size_t>(own_.size()) - static_cast<std::size_t>(count_);
    while (n > 0 && first < own_.size()) {
      iovec& v = own_[first];
      std::size_t step = n < v.iov_len ? n : v.iov_len;
      v.iov_base = static_cast<char*>(v.iov_base) + step;
      v.iov_len -= step;
      n -= step;
      if (v.iov_len == 0) ++first;
    }
    iov_ = own_.data() + first;
    count_ = static_cast<int>(own_.size() - first);
  }

 private:
  const iovec* iov_;
  int count_;
  std::vector<iovec> own_;
};

}  // namespace coil::hook
