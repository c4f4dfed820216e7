// The hook layer's settings, read once from the environment when libcoil is
// loaded. A bad value stops the program before main() with a message naming
// the variable, rather than misbehaving later with work in flight.
#pragma once

namespace coil::hook {

// FileIo says how regular-file reads and writes made in coroutines run.
enum class FileIo {
  kAuto,    // try without blocking (RWF_NOWAIT); on a page-cache miss, on a pool thread
  kPool,    // always on a pool thread
  kInline,  // always in the coroutine, blocking its thread (the plain call)
};

struct Config {
  FileIo file_io = FileIo::kAuto;  // COIL_FILE_IO=auto|pool|inline
  int file_threads = 4;            // COIL_FILE_THREADS=1..256
  int resolver_threads = 4;        // COIL_RESOLVER_THREADS=1..256
};

// config() returns the settings (defaults until libcoil's constructor ran).
const Config& config() noexcept;

}  // namespace coil::hook
