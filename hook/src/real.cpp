#include "real.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace coil::hook {

void* resolve(const char* name) noexcept {
  void* f = ::dlsym(RTLD_NEXT, name);
  if (f) return f;
  // No stdio: this may run before it is set up, or inside a hook of write.
  const char* parts[] = {"coil: cannot find the real ", name,
                         "() after libcoil (dlsym RTLD_NEXT); is the program static?\n"};
  for (const char* p : parts) {
    [[maybe_unused]] ssize_t rc = ::syscall(1 /* SYS_write */, 2, p, std::strlen(p));
  }
  std::abort();
}

}  // namespace coil::hook
