#include "config.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "blocking_pool.hpp"
#include "fd_context.hpp"

namespace coil::hook {
namespace {

Config settings;

[[noreturn]] void bad(const char* name, const char* value, const char* expected) {
  std::fprintf(stderr, "coil: %s=\"%s\" is invalid: expected %s\n", name, value, expected);
  std::fflush(stderr);
  ::_exit(2);
}

void read_threads(const char* name, int* out) {
  const char* v = std::getenv(name);
  if (!v) return;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < 1 || n > 256) bad(name, v, "a thread count from 1 to 256");
  *out = static_cast<int>(n);
}

void read_file_io(FileIo* out) {
  const char* v = std::getenv("COIL_FILE_IO");
  if (!v) return;
  if (std::strcmp(v, "auto") == 0) {
    *out = FileIo::kAuto;
  } else if (std::strcmp(v, "pool") == 0) {
    *out = FileIo::kPool;
  } else if (std::strcmp(v, "inline") == 0) {
    *out = FileIo::kInline;
  } else {
    bad("COIL_FILE_IO", v, "auto, pool or inline");
  }
}

// load() runs when libcoil is loaded, before main().
__attribute__((constructor)) void load() {
  read_file_io(&settings.file_io);
  read_threads("COIL_FILE_THREADS", &settings.file_threads);
  read_threads("COIL_RESOLVER_THREADS", &settings.resolver_threads);
  ::pthread_atfork(nullptr, nullptr, [] {
    FileState::unlock_after_fork();
    BlockingPool::reset_after_fork();
  });
}

}  // namespace

const Config& config() noexcept { return settings; }

}  // namespace coil::hook
