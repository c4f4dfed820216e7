// uring.hpp: the few io_uring operations echo_load needs, on the raw system calls (no liburing).
//
// Why echo_load has an io_uring engine at all: on loopback a client's write() does the kernel's
// receive work for the server and the server's write() does it for the client, so a load
// generator built like the server (epoll, one read and one write per message) costs as much CPU
// per message as the server. It then saturates with the server and hides any server that is
// cheaper than it. With io_uring the generator queues its sends and receives and enters the
// kernel once per batch, so it saves the two system-call entries per message, which are dear in
// a virtual machine (about 1.4 us each on the development machine).
#pragma once

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace echo_load {

// Ring is one io_uring instance used by one thread: queue SQEs with prepare(), then submit them
// and wait for completions with enter(), then walk the completions with for_each_completion().
class Ring {
 public:
  // open() sets up a ring of at least entries SQEs and cq_entries CQEs. Returns 0 or -errno.
  int open(unsigned entries, unsigned cq_entries) {
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = cq_entries;
    fd_ = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
    if (fd_ < 0) {
      // Kernels before 6.1 have no DEFER_TASKRUN: completions then run at any kernel entry.
      p = io_uring_params{};
      p.flags = IORING_SETUP_CQSIZE;
      p.cq_entries = cq_entries;
      fd_ = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
    }
    if (fd_ < 0) return -errno;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_NODROP)) {
      return -ENOSYS;  // before 5.5: not worth supporting here
    }
    std::size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    std::size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    ring_size_ = sq_size > cq_size ? sq_size : cq_size;
    ring_ = mmap(nullptr, ring_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_,
                 IORING_OFF_SQ_RING);
    if (ring_ == MAP_FAILED) return -errno;
    sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
    void* sqes = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_,
                      IORING_OFF_SQES);
    if (sqes == MAP_FAILED) return -errno;
    sqes_ = static_cast<io_uring_sqe*>(sqes);
    auto* base = static_cast<char*>(ring_);
    sq_head_ = reinterpret_cast<unsigned*>(base + p.sq_off.head);
    sq_tail_ = reinterpret_cast<unsigned*>(base + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(base + p.sq_off.ring_mask);
    sq_array_ = reinterpret_cast<unsigned*>(base + p.sq_off.array);
    sq_entries_ = p.sq_entries;
    cq_head_ = reinterpret_cast<unsigned*>(base + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(base + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(base + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(base + p.cq_off.cqes);
    tail_ = *sq_tail_;
    return 0;
  }

  ~Ring() {
    if (sqes_) munmap(sqes_, sqes_size_);
    if (ring_ && ring_ != MAP_FAILED) munmap(ring_, ring_size_);
    if (fd_ >= 0) close(fd_);
  }

  // prepare() queues one operation on fd over [buf, buf + len) tagged with user_data; it submits
  // what is queued first when the SQ is full. Returns 0 or -errno (from that submission).
  int prepare(std::uint8_t opcode, int fd, const void* buf, unsigned len, std::uint64_t user_data) {
    if (tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) == sq_entries_) {
      int r = enter(0, nullptr);
      if (r < 0) return r;
    }
    unsigned index = tail_ & sq_mask_;
    io_uring_sqe* sqe = &sqes_[index];
    std::memset(sqe, 0, sizeof *sqe);
    sqe->opcode = opcode;
    sqe->fd = fd;
    sqe->addr = reinterpret_cast<std::uint64_t>(buf);
    sqe->len = len;
    sqe->user_data = user_data;
    sq_array_[index] = index;
    ++tail_;
    return 0;
  }

  // enter() submits what is queued and waits until at least wait_for completions are there or
  // timeout passes (nullptr: no limit). Returns 0, -ETIME on the timeout, or another -errno.
  int enter(unsigned wait_for, const timespec* timeout) {
    __atomic_store_n(sq_tail_, tail_, __ATOMIC_RELEASE);
    unsigned to_submit = tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
    __kernel_timespec ts{};
    io_uring_getevents_arg arg{};
    unsigned flags = wait_for > 0 ? IORING_ENTER_GETEVENTS : 0;
    const void* argp = nullptr;
    std::size_t argsz = 0;
    if (timeout && wait_for > 0) {
      ts.tv_sec = timeout->tv_sec;
      ts.tv_nsec = timeout->tv_nsec;
      arg.ts = reinterpret_cast<std::uint64_t>(&ts);
      flags |= IORING_ENTER_EXT_ARG;
      argp = &arg;
      argsz = sizeof arg;
    }
    for (;;) {
      long r = syscall(__NR_io_uring_enter, fd_, to_submit, wait_for, flags, argp, argsz);
      if (r >= 0) return 0;
      if (errno == EINTR) continue;
      if (errno == ETIME) return -ETIME;
      // EAGAIN/EBUSY: the CQ is full; the caller reaps and enters again.
      if (errno == EAGAIN || errno == EBUSY) return 0;
      return -errno;
    }
  }

  // for_each_completion() calls f(user_data, res) for every completion there, and consumes them.
  // Returns how many there were.
  template <class F>
  unsigned for_each_completion(F&& f) {
    unsigned head = *cq_head_;
    unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    unsigned n = tail - head;
    for (; head != tail; ++head) {
      const io_uring_cqe& cqe = cqes_[head & cq_mask_];
      f(cqe.user_data, cqe.res);
    }
    __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
    return n;
  }

 private:
  int fd_ = -1;
  void* ring_ = nullptr;
  std::size_t ring_size_ = 0, sqes_size_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  unsigned *sq_head_ = nullptr, *sq_tail_ = nullptr, *sq_array_ = nullptr;
  unsigned sq_mask_ = 0, sq_entries_ = 0;
  unsigned tail_ = 0;  // the SQ tail this thread has filled up to (published by enter())
  unsigned *cq_head_ = nullptr, *cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
};

}  // namespace echo_load
