// FdTable: per-fd registration and readiness state, indexed by fd.
//
// Why a table beside the wait tree: readiness must be remembered for every
// registered fd, waited on or not. Under edge-triggered epoll an edge that
// arrives while nobody waits is never repeated, so it is recorded here and a
// later wait returns at once instead of parking forever. The table is dense
// (fds are small integers) and touched on every event, so it is an array:
// O(1), no allocation per fd. The wait tree holds only parked waiters.
//
// It grows in chunks, up to RLIMIT_NOFILE, with stable entry addresses; there
// is no fixed cap.
#pragma once

#include <sys/resource.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "chunked_table.hpp"
#include "coil/detail/fd_wait.hpp"

namespace coil::detail {

struct WaitNode;

struct FdEntry {
  std::uint32_t generation = 0;  // fd_generation() when registered
  bool registered = false;       // added to this scheduler's epoll
  std::uint8_t ready = 0;        // Interest bits seen ready since last mark_not_ready()
  std::uint8_t sticky = 0;       // Interest bits ready for good: after EOF (RDHUP), HUP or an error
  std::uint8_t drained = 0;      // not ready since mark_drained(), with no EAGAIN seen (stats)
  std::uint32_t waiters = 0;     // in the WaitTree
  // Edges seen, per interest: they tell SchedulerImpl::batch() whether one arrived while a
  // batched call's result was on its way back to its coroutine.
  std::uint16_t edges_in = 0;
  std::uint16_t edges_out = 0;
  WaitNode* reader = nullptr;  // the one reader parked here, if any
  WaitNode* writer = nullptr;  // the one writer parked here, if any
};

// edges_of() is e's count of edges for interest (kReadable or kWritable).
inline std::uint16_t edges_of(const FdEntry& e, std::uint8_t interest) noexcept {
  return interest == kReadable ? e.edges_in : e.edges_out;
}

// fd_generation() is a process-wide count of fd_reopened(fd) calls (0 if
// never). An entry registered under another generation is stale: its open
// file was closed behind this scheduler's back.
std::uint32_t fd_generation(int fd) noexcept;

// fd_generations holds the counts behind fd_generation(), for inline readers
// (Poller::prepare()); its chunk exists once a scheduler registered the fd.
extern ChunkedTable<std::atomic<std::uint32_t>> fd_generations;

class FdTable {
 public:
  static constexpr int kChunk = 4096;

  // find() returns the entry of fd, or nullptr if fd was never touched.
  FdEntry* find(int fd) noexcept {
    if (fd < 0) return nullptr;
    auto c = static_cast<std::size_t>(fd / kChunk);
    if (c >= chunks_.size() || !chunks_[c]) return nullptr;
    return &(*chunks_[c])[static_cast<std::size_t>(fd % kChunk)];
  }

  // get() returns the entry of fd, growing the table. nullptr if fd is
  // negative or not below RLIMIT_NOFILE (no such fd can exist).
  FdEntry* get(int fd) {
    if (FdEntry* e = find(fd)) return e;
    if (fd < 0 || !below_fd_limit(fd)) return nullptr;
    auto c = static_cast<std::size_t>(fd / kChunk);
    if (c >= chunks_.size()) chunks_.resize(c + 1);
    chunks_[c] = std::make_unique<Chunk>();
    return &(*chunks_[c])[static_cast<std::size_t>(fd % kChunk)];
  }

  // for_each() calls fn(fd, entry) for every entry the table holds.
  template <class F>
  void for_each(F&& fn) {
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      if (!chunks_[c]) continue;
      for (std::size_t i = 0; i < kChunk; ++i) {
        fn(static_cast<int>(c * kChunk + i), (*chunks_[c])[i]);
      }
    }
  }

 private:
  using Chunk = std::array<FdEntry, kChunk>;

  static bool below_fd_limit(int fd) noexcept {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return true;
    return rl.rlim_cur == RLIM_INFINITY || static_cast<rlim_t>(fd) < rl.rlim_cur;
  }

  std::vector<std::unique_ptr<Chunk>> chunks_;
};

}  // namespace coil::detail
