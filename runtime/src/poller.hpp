// Poller: edge-triggered epoll, the fd table and the wait tree.
//
// Each fd is registered once (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) on its
// first wait and stays registered until forget(); waits themselves make no
// epoll_ctl call. An eventfd, registered the same way, lets other threads
// wake the poller.
#pragma once

#include <sys/epoll.h>
#include <time.h>

#include <atomic>
#include <boost/intrusive/set.hpp>
#include <cstdint>

#include "chunked_table.hpp"
#include "fd_table.hpp"

namespace coil::detail {

class Coroutine;

// WaitNode is one coroutine waiting for one fd. It lives on the waiting
// coroutine's stack for the length of the wait.
// It sits either in its fd's FdEntry (the reader or writer slot) or in the
// WaitTree.
struct WaitNode : boost::intrusive::set_base_hook<> {
  int fd = -1;
  std::uint8_t interest = 0;
  std::uint8_t revents = 0;  // Interest bits that woke it, or kGone
  bool in_slot = false;      // parked in FdEntry::reader or ::writer
  Coroutine* co = nullptr;

  static constexpr std::uint8_t kGone = 0x80;  // fd forgotten while waiting

  // linked() is true until the node is woken or removed.
  bool linked() const noexcept { return in_slot || is_linked(); }
};

struct WaitNodeFd {
  using type = int;
  int operator()(const WaitNode& n) const noexcept { return n.fd; }
};

// WaitTree: the waiters that do not fit their fd's slots, keyed by fd.
//
// The common case, at most one reader and one writer per fd, parks in the
// FdEntry itself: O(1), and the one cache line the wake-up reads anyway. A
// tree of nodes living on a thousand different coroutine stacks would cost
// a cache miss per level on every park and wake (measured: the largest item
// in the echo server's profile before the slots). The tree takes the rest:
// several coroutines in accept() on one listener, several readers of one
// pipe, poll() over many fds with both interests. Why a tree for those:
// equal keys keep arrival order, nodes link in without allocation, and
// forget() finds every waiter of an fd in O(log n).
using WaitTree = boost::intrusive::multiset<WaitNode, boost::intrusive::key_of_value<WaitNodeFd>>;

class Poller {
 public:
  Poller();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // prepare() returns the entry for fd, registering fd with epoll on first
  // use. On failure returns nullptr with errno set (EBADF, ENOMEM, EPERM for
  // fds epoll cannot watch, such as regular files). Inline: a hooked read and
  // write call it three times per echoed message, nearly always for an fd
  // registered under its current generation.
  FdEntry* prepare(int fd) {
    FdEntry* e = fds_.find(fd);
    if (e && e->registered) {
      const std::atomic<std::uint32_t>* counter = fd_generations.find(fd);
      if (counter && e->generation == counter->load(std::memory_order_acquire)) return e;
    }
    return register_fd(fd);
  }

  FdTable& fds() noexcept { return fds_; }
  // notify_fd() is the eventfd notify() writes; a signal handler may write
  // it too (note_signal()).
  int notify_fd() const noexcept { return notify_fd_; }

  // add() / remove() link a waiter. remove() is a no-op if not linked.
  void add(WaitNode& node) noexcept;
  void remove(WaitNode& node) noexcept;
  std::size_t waiter_count() const noexcept { return tree_.size() + slotted_; }

  // poll() waits for events up to timeout (nullptr: forever), records
  // readiness and wakes waiters. Returns true if notify() was called.
  bool poll(const timespec* timeout, const sigset_t* mask = nullptr);

  // forget() deregisters fd and wakes its waiters with kGone.
  void forget(int fd) noexcept;

  // notify() wakes a poll() in progress or the next one. Thread-safe.
  void notify() noexcept;

  // reset_after_fork() gives a fork()ed child its own epoll instance and eventfd: the ones it
  // inherited are shared with the parent, whose events its waits would take and whose set its
  // registrations would change. Fds with waiters are registered on the new instance if
  // keep_waiters, else the waiters are forgotten (their coroutines are gone).
  void reset_after_fork(bool keep_waiters);

 private:
  void open();
  FdEntry* register_fd(int fd);
  void dispatch(const epoll_event& ev) noexcept;
  void wake_waiters(FdEntry& e, int fd, std::uint8_t ready) noexcept;
  void wake_slot(WaitNode*& slot, std::uint8_t hit) noexcept;
  int wait(epoll_event* events, int max, const timespec* timeout, const sigset_t* mask);

  // coil-gdb reads fds_ and tree_ (and WaitNode's fd, interest and co,
  // FdEntry's reader and writer) by name to show what coroutines wait on.
  int epfd_ = -1;
  int notify_fd_ = -1;
  std::atomic<bool> notified_{false};
  FdTable fds_;
  WaitTree tree_;
  std::size_t slotted_ = 0;  // waiters parked in FdEntry slots
};

}  // namespace coil::detail
