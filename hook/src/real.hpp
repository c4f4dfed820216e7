// The real libc functions behind coil's hooks.
//
// Each is looked up once with dlsym(RTLD_NEXT, name): the next definition
// after libcoil in the symbol search order, which is libc's, or another
// interposer's (a sanitizer runtime) that in turn calls libc. The pointer is
// cached in a constant-initialised atomic, so a lookup is safe from any
// thread and even before static initialisation (hooked calls can come from
// other libraries' constructors). Two threads racing on the first lookup
// both store the same pointer.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <type_traits>

// COIL_HOOK marks an interposed libc function: C linkage, exported.
#define COIL_HOOK extern "C" __attribute__((visibility("default")))

namespace coil::hook {

// resolve() returns dlsym(RTLD_NEXT, name). It aborts with a message naming
// the function if there is none: a hook with nothing behind it cannot work.
void* resolve(const char* name) noexcept;

// Real<F> caches the real function of one hook; call it like the function.
template <class F>
class Real {
 public:
  explicit constexpr Real(const char* name) noexcept : name_(name) {}

  F get() noexcept {
    F f = fn_.load(std::memory_order_acquire);
    if (__builtin_expect(f == nullptr, 0)) {
      f = reinterpret_cast<F>(resolve(name_));
      fn_.store(f, std::memory_order_release);
    }
    return f;
  }

  // noexcept where the function is (glibc's __THROW): a cancellation point, which is not, lets
  // the forced unwind of pthread_cancel() or pthread_exit() pass through.
  template <class... Args>
  auto operator()(Args... args) noexcept(std::is_nothrow_invocable_v<F, Args...>) {
    return get()(args...);
  }

 private:
  std::atomic<F> fn_{nullptr};
  const char* name_;
};

// real::NAME is the real NAME, one cache per function for the whole library.
namespace real {
// glibc's declarations carry attributes (access, nonnull) that a function
// pointer type cannot: dropping them here is intended.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#define COIL_REAL_FN(name) inline constinit Real<decltype(&::name)> name{#name};
COIL_REAL_FN(socket)
COIL_REAL_FN(socketpair)
COIL_REAL_FN(accept)
COIL_REAL_FN(accept4)
COIL_REAL_FN(connect)
COIL_REAL_FN(shutdown)
COIL_REAL_FN(setsockopt)
COIL_REAL_FN(read)
COIL_REAL_FN(readv)
COIL_REAL_FN(write)
COIL_REAL_FN(writev)
COIL_REAL_FN(pread)
COIL_REAL_FN(pwrite)
COIL_REAL_FN(preadv2)
COIL_REAL_FN(pwritev2)
COIL_REAL_FN(recv)
COIL_REAL_FN(recvfrom)
COIL_REAL_FN(recvmsg)
COIL_REAL_FN(send)
COIL_REAL_FN(sendto)
COIL_REAL_FN(sendmsg)
COIL_REAL_FN(sendfile)
COIL_REAL_FN(recvmmsg)
COIL_REAL_FN(sendmmsg)
COIL_REAL_FN(splice)
COIL_REAL_FN(tee)
COIL_REAL_FN(vmsplice)
COIL_REAL_FN(fsync)
COIL_REAL_FN(fdatasync)
COIL_REAL_FN(poll)
COIL_REAL_FN(ppoll)
COIL_REAL_FN(select)
COIL_REAL_FN(pselect)
COIL_REAL_FN(epoll_wait)
COIL_REAL_FN(epoll_pwait)
COIL_REAL_FN(epoll_pwait2)
COIL_REAL_FN(sleep)
COIL_REAL_FN(usleep)
COIL_REAL_FN(nanosleep)
COIL_REAL_FN(clock_nanosleep)
COIL_REAL_FN(sched_yield)
COIL_REAL_FN(close)
COIL_REAL_FN(fcntl)
COIL_REAL_FN(ioctl)
COIL_REAL_FN(dup)
COIL_REAL_FN(dup2)
COIL_REAL_FN(dup3)
COIL_REAL_FN(pipe)
COIL_REAL_FN(pipe2)
COIL_REAL_FN(eventfd)
COIL_REAL_FN(open)
COIL_REAL_FN(openat)
COIL_REAL_FN(getaddrinfo)
COIL_REAL_FN(getnameinfo)
COIL_REAL_FN(gethostbyname_r)
COIL_REAL_FN(gethostbyname)
COIL_REAL_FN(gethostbyname2)
COIL_REAL_FN(gethostbyname2_r)
COIL_REAL_FN(sigaction)
COIL_REAL_FN(flock)
#undef COIL_REAL_FN
#pragma GCC diagnostic pop
}  // namespace real

}  // namespace coil::hook
