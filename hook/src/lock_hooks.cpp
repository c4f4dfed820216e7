// Hooked flock(); fcntl's F_SETLKW and F_OFD_SETLKW are in fd_hooks.cpp.
// Both wait with wait_for_lock() (lock_wait.hpp).
#include <sys/file.h>

#include <cerrno>

#include "lock_wait.hpp"
#include "real.hpp"

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

COIL_HOOK int flock(int fd, int op) {
  bool blocking = op == LOCK_SH || op == LOCK_EX;  // without LOCK_NB
  if (!in_coroutine() || !blocking) return real::flock(fd, op);
  return wait_for_lock([=] { return real::flock(fd, op | LOCK_NB); });
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char lock = 0;
}  // namespace coil::hook::anchor
