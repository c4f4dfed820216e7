// GreenThread: the record behind a green thread's pthread_t (the pthread_t is its address).
// Internal to the thread hooks (thread_hooks.cpp, key_hooks.cpp) and the start-up.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace coil::preload {

// KeySlot is one pthread_setspecific() value, valid while the key's generation is unchanged
// (a deleted and re-created key must not see the old values).
struct KeySlot {
  std::uint32_t generation = 0;
  void* value = nullptr;
};

struct GreenThread {
  std::uint32_t id = 0;
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  void* result = nullptr;              // start's return value or pthread_exit's argument
  std::atomic<std::uint32_t> done{0};  // futex word: 1 once finished
  bool detached = false;
  bool joining = false;  // a pthread_join is waiting for it
  bool is_main = false;
  // The stack, as pthread_getattr_np reports it: the size from creation, the address once the
  // thread first runs (kept after it ends, as glibc keeps a joinable thread's).
  void* stack_lo = nullptr;
  std::size_t stack_size = 0;
  // The OS thread (worker) it runs on, once it has run: where pthread_kill() sends a signal.
  std::atomic<pthread_t> os_thread{};
  std::vector<KeySlot> keys;  // by pthread_key_t
  char name[16] = {};         // pthread_setname_np
};

// current_green_thread() is the running green thread's record, or nullptr.
GreenThread* current_green_thread() noexcept;

// adopt_main() records the running coroutine as main()'s, and makes it a green thread in green
// mode; called once at start-up.
void adopt_main();

// finish_main() ends main()'s green thread after it called pthread_exit() (thread_hooks.cpp).
void finish_main() noexcept;

// main_exited() is true once main() called pthread_exit(): the process then ends, with status
// 0, when the last green thread does.
bool main_exited() noexcept;

// after_main_exited() ends the process, or the main OS thread, once main() has called
// pthread_exit() and every green thread has ended: exit(0) unless native threads of the program
// still run, whose last one calls exit(0) as it ends.
[[noreturn]] void after_main_exited();

// after_fork_in_child() is the child's side of a fork(): its only thread is the one that forked
// (the scheduler keeps only the forking coroutine, SchedulerImpl::after_fork_in_child()), so
// the other green threads' waits are forgotten, no native thread is counted, and when a green
// thread other than main() forked, main() counts as exited: the child ends, with status 0, when
// the forking thread does.
void after_fork_in_child() noexcept;

// GreenExit is what pthread_exit() throws to unwind a green thread's stack to its start.
struct GreenExit {
  void* value;
};

// run_key_destructors() calls the destructors of t's non-null key values, as a thread's exit
// does (up to PTHREAD_DESTRUCTOR_ITERATIONS rounds). key_hooks.cpp.
void run_key_destructors(GreenThread* t) noexcept;

}  // namespace coil::preload
