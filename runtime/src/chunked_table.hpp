// ChunkedTable: a process-wide table indexed by fd that any thread may read
// and grow without a lock.
//
// Why this shape: fds are small dense integers, looked up on every hooked
// call, from any thread, possibly before static initialisation has run (a
// hooked call from another library's constructor). So the table is
// constant-initialised (a fixed top array of atomic chunk pointers, zero in
// .bss and untouched until used), lookups are two loads, and a missing chunk
// is installed with one compare-exchange. Chunks are never freed: the table
// lives as long as the process, so there is no destruction-order hazard at
// exit either. It covers fds below 2^26, far beyond any RLIMIT_NOFILE a
// kernel allows by default (fs.nr_open is 2^20).
#pragma once

#include <atomic>
#include <cstddef>
#include <new>

namespace coil::detail {

template <class T>
class ChunkedTable {
 public:
  static constexpr int kChunkBits = 12;  // 4096 entries per chunk
  static constexpr int kTopBits = 14;
  static constexpr int kLimit = 1 << (kChunkBits + kTopBits);

  constexpr ChunkedTable() = default;
  ChunkedTable(const ChunkedTable&) = delete;
  ChunkedTable& operator=(const ChunkedTable&) = delete;

  // find() returns the entry of fd, or nullptr if its chunk was never made.
  T* find(int fd) const noexcept {
    if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kLimit)) return nullptr;
    T* chunk = top_[static_cast<unsigned>(fd) >> kChunkBits].load(std::memory_order_acquire);
    return chunk ? chunk + (fd & ((1 << kChunkBits) - 1)) : nullptr;
  }

  // get() returns the entry of fd, making its chunk (value-initialised
  // entries) if needed; nullptr for a negative or out-of-range fd or when
  // out of memory.
  T* get(int fd) noexcept {
    if (T* e = find(fd)) return e;
    if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kLimit)) return nullptr;
    auto& slot = top_[static_cast<unsigned>(fd) >> kChunkBits];
    T* fresh = new (std::nothrow) T[std::size_t{1} << kChunkBits]();
    if (!fresh) return nullptr;
    T* expected = nullptr;
    if (!slot.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
      delete[] fresh;  // another thread won; use its chunk
      fresh = expected;
    }
    return fresh + (fd & ((1 << kChunkBits) - 1));
  }

 private:
  std::atomic<T*> top_[1 << kTopBits]{};
};

}  // namespace coil::detail
