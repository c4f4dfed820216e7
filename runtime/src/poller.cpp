#include "poller.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "chunked_table.hpp"
#include "coil/detail/park.hpp"
#include "hot.hpp"
#include "sys.hpp"

namespace coil::detail {
namespace {

constexpr std::uint32_t kRegisterEvents = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr int kMaxEvents = 512;

// readiness() maps epoll events to the waits they satisfy. Errors and hangups
// satisfy both: the next read or write reports them.
std::uint8_t readiness(std::uint32_t events) noexcept {
  std::uint8_t ready = 0;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) ready |= kReadable;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ready |= kWritable;
  return ready;
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

constinit ChunkedTable<std::atomic<std::uint32_t>> fd_generations;

std::uint32_t fd_generation(int fd) noexcept {
  const std::atomic<std::uint32_t>* g = fd_generations.find(fd);
  return g ? g->load(std::memory_order_acquire) : 0;
}

void fd_reopened(int fd) noexcept {
  // Only a scheduler that registered fd can hold a stale entry, and
  // registering made the chunk: no chunk, nothing to invalidate.
  if (std::atomic<std::uint32_t>* g = fd_generations.find(fd)) {
    g->fetch_add(1, std::memory_order_acq_rel);
  }
}

Poller::Poller() { open(); }

// open() makes the epoll instance and the notify eventfd, watched by it.
void Poller::open() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw_errno("coil: epoll_create1");
  notify_fd_ = sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (notify_fd_ < 0) {
    int err = errno;
    sys::close(epfd_);
    errno = err;
    throw_errno("coil: eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = notify_fd_;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, notify_fd_, &ev) != 0) {
    int err = errno;
    sys::close(notify_fd_);
    sys::close(epfd_);
    errno = err;
    throw_errno("coil: epoll_ctl(eventfd)");
  }
}

void Poller::reset_after_fork(bool keep_waiters) {
  // Closing drops only this process's references: the parent keeps its instance.
  sys::close(epfd_);
  sys::close(notify_fd_);
  notified_.store(false, std::memory_order_relaxed);
  open();
  if (!keep_waiters) {
    tree_.clear();
    slotted_ = 0;  // the slots are emptied below
  }
  fds_.for_each([&](int fd, FdEntry& e) {
    if (!keep_waiters) {
      e.reader = e.writer = nullptr;
      e.waiters = 0;
    }
    if (!e.registered) return;
    e.registered = false;
    // Waiters go on waiting, on the new instance (which reports a ready fd at once); the other
    // fds register again at their next wait.
    if (e.reader || e.writer || e.waiters) (void)register_fd(fd);
  });
}

Poller::~Poller() {
  sys::close(notify_fd_);
  sys::close(epfd_);
}

// register_fd() is prepare()'s slow path: an fd not yet (or no longer)
// registered under its current generation.
FdEntry* Poller::register_fd(int fd) {
  FdEntry* e = fds_.get(fd);
  if (!e) {
    errno = EBADF;
    return nullptr;
  }
  const std::atomic<std::uint32_t>* counter = fd_generations.find(fd);
  // Make the generation's counter exist before reading it, so that a
  // close on another thread from now on is seen.
  if (!counter && !(counter = fd_generations.get(fd))) {
    errno = ENOMEM;
    return nullptr;
  }
  std::uint32_t generation = counter->load(std::memory_order_acquire);
  if (e->registered && e->generation == generation) return e;
  e->registered = false;  // stale: the fd was reopened behind our back
  epoll_event ev{};
  ev.events = kRegisterEvents;
  ev.data.fd = fd;
  int rc = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  if (rc != 0 && errno == EEXIST) {
    // Still registered from before a close() we were not told about (the
    // open file description lives on in a dup): take it over.
    rc = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
  }
  if (rc != 0) return nullptr;
  e->registered = true;
  e->generation = generation;
  e->sticky = 0;
  e->drained = 0;
  // Unknown until the first edge: assume ready so the first I/O is tried.
  e->ready = kReadable | kWritable;
  return e;
}

COIL_HOT void Poller::add(WaitNode& node) noexcept {
  FdEntry* e = fds_.find(node.fd);
  if (e) {
    WaitNode** slot = node.interest == kReadable   ? &e->reader
                      : node.interest == kWritable ? &e->writer
                                                   : nullptr;
    if (slot && !*slot) {
      *slot = &node;
      node.in_slot = true;
      ++slotted_;
      return;
    }
    ++e->waiters;
  }
  tree_.insert(node);
}

COIL_HOT void Poller::remove(WaitNode& node) noexcept {
  FdEntry* e;
  if (node.in_slot) {
    if ((e = fds_.find(node.fd))) {
      if (e->reader == &node) e->reader = nullptr;
      if (e->writer == &node) e->writer = nullptr;
    }
    node.in_slot = false;
    --slotted_;
    return;
  }
  if (!node.is_linked()) return;
  tree_.erase(tree_.iterator_to(node));
  if ((e = fds_.find(node.fd))) --e->waiters;
}

COIL_HOT void Poller::wake_slot(WaitNode*& slot, std::uint8_t hit) noexcept {
  WaitNode* node = slot;
  slot = nullptr;
  node->in_slot = false;
  --slotted_;
  node->revents = hit;
  wake(node->co);
}

COIL_HOT void Poller::wake_waiters(FdEntry& e, int fd, std::uint8_t ready) noexcept {
  bool gone = ready == WaitNode::kGone;
  if (e.reader && (gone || (ready & kReadable)))
    wake_slot(e.reader, gone ? ready : std::uint8_t{kReadable});
  if (e.writer && (gone || (ready & kWritable)))
    wake_slot(e.writer, gone ? ready : std::uint8_t{kWritable});
  if (e.waiters == 0) return;
  auto [it, end] = tree_.equal_range(fd);
  while (it != end) {
    WaitNode& node = *it;
    std::uint8_t hit = gone ? ready : (node.interest & ready);
    if (!hit) {
      ++it;
      continue;
    }
    it = tree_.erase(it);
    --e.waiters;
    node.revents = hit;
    wake(node.co);
  }
}

COIL_HOT void Poller::dispatch(const epoll_event& ev) noexcept {
  FdEntry* e = fds_.find(ev.data.fd);
  if (!e || !e->registered) return;
  std::uint8_t ready = readiness(ev.events);
  e->ready |= ready;
  e->edges_in = static_cast<std::uint16_t>(e->edges_in + ((ready & kReadable) != 0));
  e->edges_out = static_cast<std::uint16_t>(e->edges_out + ((ready & kWritable) != 0));
  // After EOF, a hang-up or an error no new edge will come, yet every read
  // (or write) returns at once: such readiness must outlive mark_not_ready().
  if (ev.events & (EPOLLHUP | EPOLLERR)) {
    e->sticky = kReadable | kWritable;
  } else if (ev.events & EPOLLRDHUP) {
    e->sticky |= kReadable;
  }
  if (e->reader || e->writer || e->waiters) wake_waiters(*e, ev.data.fd, ready);
}

int Poller::wait(epoll_event* events, int max, const timespec* timeout, const sigset_t* mask) {
  static std::atomic<bool> have_pwait2{true};
  if (have_pwait2.load(std::memory_order_relaxed)) {
    int n = ::epoll_pwait2(epfd_, events, max, timeout, mask);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2.store(false, std::memory_order_relaxed);
  }
  int ms = -1;
  if (timeout) {
    // Round up: waking before the deadline would spin until it.
    long long ns = timeout->tv_sec * 1000000000LL + timeout->tv_nsec;
    long long rounded = (ns + 999999) / 1000000;
    ms = rounded > 0x7fffffff ? 0x7fffffff : static_cast<int>(rounded);
  }
  return ::epoll_pwait(epfd_, events, max, ms, mask);
}

COIL_HOT bool Poller::poll(const timespec* timeout, const sigset_t* mask) {
  epoll_event events[kMaxEvents];
  int n = wait(events, kMaxEvents, timeout, mask);
  if (n < 0) {
    if (errno == EINTR) return false;
    throw_errno("coil: epoll_wait");
  }
  bool notified = false;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.fd == notify_fd_) {
      notified = true;
      continue;
    }
    dispatch(events[i]);
  }
  if (notified) {
    std::uint64_t count;
    // One read takes the whole count (no EFD_SEMAPHORE): a second would only meet EAGAIN.
    while (sys::read(notify_fd_, &count, sizeof count) < 0 && errno == EINTR) {
    }
    notified_.store(false, std::memory_order_release);
  }
  return notified;
}

void Poller::forget(int fd) noexcept {
  FdEntry* e = fds_.find(fd);
  if (!e || !e->registered) return;
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  e->registered = false;
  e->ready = 0;
  if (e->reader || e->writer || e->waiters) wake_waiters(*e, fd, WaitNode::kGone);
}

void Poller::notify() noexcept {
  if (notified_.exchange(true, std::memory_order_acq_rel)) return;
  std::uint64_t one = 1;
  ssize_t rc;
  do {
    rc = sys::write(notify_fd_, &one, sizeof one);
  } while (rc < 0 && errno == EINTR);
}

}  // namespace coil::detail
