// tls_running: the coroutine running on this thread, or nullptr outside
// coroutines (including the scheduler's own loop). The hook layer reads it on
// every call to decide between the plain call and the coroutine path, so it
// is a plain initial-exec TLS variable: libcoil is linked or preloaded, never
// dlopen'd.
#pragma once

namespace coil::detail {

class Coroutine;

extern thread_local Coroutine* tls_running __attribute__((tls_model("initial-exec")));

}  // namespace coil::detail
