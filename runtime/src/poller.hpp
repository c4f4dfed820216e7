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

#include "fd_table.hpp"

namespace coil::detail {

class Coroutine;

// WaitNode is one coroutine waiting for one fd. It lives on the waiting
// coroutine's stack for the length of the wait.
struct WaitNode : boost::intrusive::set_base_hook<> {
  int fd = -1;
  std::uint8_t interest = 0;
  std::uint8_t revents = 0;  // Interest bits that woke it, or kGone
  Coroutine* co = nullptr;

  static constexpr std::uint8_t kGone = 0x80;  // fd forgotten while waiting
};

struct WaitNodeFd {
  using type = int;
  int operator()(const WaitNode& n) const noexcept { return n.fd; }
};

// WaitTree: waiters keyed by fd. Why a tree: a reader and a writer (and more
// than one of each, as with several threads in accept()) may wait on one fd,
// equal keys keep arrival order, nodes link in without allocation, and
// forget() finds every waiter of an fd in O(log n). Why not the fd table
// alone: waiters are few and transient while fds are many; the tree also
// gives ordered iteration for diagnostics.
using WaitTree = boost::intrusive::multiset<WaitNode, boost::intrusive::key_of_value<WaitNodeFd>>;

class Poller {
 public:
  Poller();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // prepare() returns the entry for fd, registering fd with epoll on first
  // use. On failure returns nullptr with errno set (EBADF, ENOMEM, EPERM for
  // fds epoll cannot watch, such as regular files).
  FdEntry* prepare(int fd);

  FdTable& fds() noexcept { return fds_; }

  // add() / remove() link a waiter. remove() is a no-op if not linked.
  void add(WaitNode& node) noexcept;
  void remove(WaitNode& node) noexcept;
  std::size_t waiter_count() const noexcept { return tree_.size(); }

  // poll() waits for events up to timeout (nullptr: forever), records
  // readiness and wakes waiters. Returns true if notify() was called.
  bool poll(const timespec* timeout);

  // forget() deregisters fd and wakes its waiters with kGone.
  void forget(int fd) noexcept;

  // notify() wakes a poll() in progress or the next one. Thread-safe.
  void notify() noexcept;

  // visit_waiters() calls f(node) for every waiter in fd order.
  template <class F>
  void visit_waiters(F&& f) const {
    for (const WaitNode& n : tree_) f(n);
  }

 private:
  void dispatch(const epoll_event& ev) noexcept;
  void wake_waiters(int fd, std::uint8_t ready) noexcept;
  int wait(epoll_event* events, int max, const timespec* timeout);

  int epfd_ = -1;
  int notify_fd_ = -1;
  std::atomic<bool> notified_{false};
  FdTable fds_;
  WaitTree tree_;
};

}  // namespace coil::detail
