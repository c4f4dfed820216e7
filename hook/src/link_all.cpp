// Why every hook object file is linked into a program that links libcoil
// statically: a static link takes an archive member only for a symbol the
// program itself needs, and a program that never names getaddrinfo or
// flock (a library it uses does: libcurl, sqlite) would get the plain call,
// which blocks the scheduler's thread. Each hook file defines an anchor;
// link_all_hooks() reads them all, and every scheduler calls it.
#include "link_all.hpp"

namespace coil::hook {
namespace anchor {
extern const char rw, socket, fd, poll, sleep, dns, signal, lock, batch, splice;
}  // namespace anchor

int link_all_hooks() noexcept {
  const char* const all[] = {&anchor::rw,    &anchor::socket, &anchor::fd,     &anchor::poll,
                             &anchor::sleep, &anchor::dns,    &anchor::signal, &anchor::lock,
                             &anchor::batch, &anchor::splice};
  int sum = 0;
  for (const char* a : all) sum += *static_cast<const volatile char*>(a);
  return sum;
}

}  // namespace coil::hook
