#include "batched_io.hpp"

#include <liburing.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "coil/detail/fd_wait.hpp"
#include "hot.hpp"

#if COIL_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#endif

namespace coil::hook {
namespace {

// kTryFlags make the batched try what the direct try on the non-blocking socket is: it never
// waits, and it raises no signal inside io_uring_enter (io_uring adds MSG_NOSIGNAL anyway).
constexpr int kTryFlags = MSG_DONTWAIT | MSG_NOSIGNAL;

// SendCall is one send or sendmsg (msg set) as a batched call.
class SendCall final : public detail::BatchedCall {
 public:
  SendCall(int to, const void* buf, std::size_t len, const msghdr* msg, int flags) noexcept
      : BatchedCall(to, detail::kWritable),
        buf_(buf),
        len_(len),
        msg_(msg),
        flags_(flags | kTryFlags) {}

  void prepare(io_uring_sqe* sqe) const noexcept override {
    if (msg_) {
      io_uring_prep_sendmsg(sqe, fd, msg_, static_cast<unsigned>(flags_));
    } else {
      io_uring_prep_send(sqe, fd, buf_, len_, flags_);
    }
  }

  long make() const noexcept override {
    long n = msg_ ? ::syscall(SYS_sendmsg, fd, msg_, flags_)
                  : ::syscall(SYS_sendto, fd, buf_, len_, flags_, nullptr, 0);
    return n < 0 ? -errno : n;
  }

 private:
  const void* buf_;
  std::size_t len_;
  const msghdr* msg_;
  int flags_;
};

// RecvCall is one plain receive as a batched call.
class RecvCall final : public detail::BatchedCall {
 public:
  RecvCall(int from, void* buf, std::size_t len) noexcept
      : BatchedCall(from, detail::kReadable), buf_(buf), len_(len) {}

  void prepare(io_uring_sqe* sqe) const noexcept override {
    io_uring_prep_recv(sqe, fd, buf_, len_, MSG_DONTWAIT);
  }

  long make() const noexcept override {
    long n = ::syscall(SYS_recvfrom, fd, buf_, len_, MSG_DONTWAIT, nullptr, nullptr);
    return n < 0 ? -errno : n;
  }

 private:
  void* buf_;
  std::size_t len_;
};

// raise_sigpipe() sends this thread the SIGPIPE the kernel's send would have: thread-directed,
// with SI_USER and our pid and uid, as send_sig(SIGPIPE, current, 0) fills it in.
void raise_sigpipe() noexcept {
  siginfo_t info{};
  info.si_signo = SIGPIPE;
  info.si_code = SI_USER;
  info.si_pid = ::getpid();
  info.si_uid = ::getuid();
  ::syscall(SYS_rt_tgsigqueueinfo, info.si_pid, ::gettid(), SIGPIPE, &info);
}

// made() turns a batched call's result into the call's return value and errno.
long made(long result, int flags) noexcept {
  if (result == detail::kNotBatched || result >= 0) return result;
  if (result == -EPIPE && !(flags & MSG_NOSIGNAL)) raise_sigpipe();
  errno = static_cast<int>(-result);
  return -1;
}

}  // namespace

COIL_HOT long send_batched(int fd, const void* buf, std::size_t len, int flags) {
  if ((flags & ~kBatchableFlags) || len > kMaxBatchedLength) return detail::kNotBatched;
  SendCall call(fd, buf, len, nullptr, flags);
  return made(detail::batch(call), flags);
}

long sendmsg_batched(int fd, const msghdr* msg, int flags) {
  if ((flags & ~kBatchableFlags) || msg->msg_name) return detail::kNotBatched;
  SendCall call(fd, nullptr, 0, msg, flags);
  return made(detail::batch(call), flags);
}

COIL_HOT long recv_batched(int fd, void* buf, std::size_t len) {
  if (len > kMaxBatchedLength) return detail::kNotBatched;
  RecvCall call(fd, buf, len);
  long n = made(detail::batch(call), MSG_NOSIGNAL);
#if COIL_HAVE_VALGRIND
  // The kernel wrote the bytes inside io_uring_enter, where memcheck did not see it.
  if (n > 0) VALGRIND_MAKE_MEM_DEFINED(buf, static_cast<std::size_t>(n));
#endif
  return n;
}

}  // namespace coil::hook
