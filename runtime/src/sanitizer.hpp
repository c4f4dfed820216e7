// Switch annotations for AddressSanitizer and ThreadSanitizer. Each is a
// no-op unless coil is built with that sanitizer.
#pragma once

#include <pthread.h>

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define COIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COIL_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define COIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COIL_TSAN 1
#endif
#endif

#if COIL_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if COIL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace coil::detail {

// SwitchAnnotation brackets one context switch. Construct it just before
// context_switch() with the stack being switched to; call finish() right
// after context_switch() returns (that is, once this side runs again).
class SwitchAnnotation {
 public:
  // exiting: the side switching away will never run again (ASan may then
  // free its fake stack).
  SwitchAnnotation(const void* to_stack_lo, std::size_t to_stack_size, void* to_tsan_fiber,
                   bool exiting = false) noexcept {
#if COIL_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &fake_stack_, to_stack_lo, to_stack_size);
#else
    (void)to_stack_lo, (void)to_stack_size, (void)exiting;
#endif
#if COIL_TSAN
    __tsan_switch_to_fiber(to_tsan_fiber, 0);
#else
    (void)to_tsan_fiber;
#endif
  }

  // finish() completes the switch back into this side; it reports the
  // bounds of the stack we came from (used to learn the thread's own stack).
  void finish(const void** from_stack_lo = nullptr,
              std::size_t* from_stack_size = nullptr) noexcept {
#if COIL_ASAN
    __sanitizer_finish_switch_fiber(fake_stack_, from_stack_lo, from_stack_size);
#else
    (void)from_stack_lo, (void)from_stack_size;
#endif
  }

 private:
  [[maybe_unused]] void* fake_stack_ = nullptr;
};

// First code of a new coroutine: completes the switch that started it.
inline void finish_first_switch() noexcept {
#if COIL_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

// thread_stack_bounds() finds the calling thread's own stack, which ASan
// must be told about when a coroutine switches back to the scheduler loop.
// Only needed (and only called) under ASan.
inline void thread_stack_bounds(const void** lo, std::size_t* size) noexcept {
#if COIL_ASAN
  pthread_attr_t attr;
  void* addr = nullptr;
  std::size_t bytes = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &bytes);
    pthread_attr_destroy(&attr);
  }
  *lo = addr;
  *size = bytes;
#else
  (void)lo, (void)size;
#endif
}

// asan_forget_stack() clears the poison a finished coroutine's frames left
// on its stack, so that the next coroutine on the stack starts clean.
inline void asan_forget_stack(void* lo, std::size_t size) noexcept {
#if COIL_ASAN
  __asan_unpoison_memory_region(lo, size);
#else
  (void)lo, (void)size;
#endif
}

inline void* tsan_create_fiber() noexcept {
#if COIL_TSAN
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}

inline void* tsan_current_fiber() noexcept {
#if COIL_TSAN
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}

inline void tsan_destroy_fiber(void* fiber) noexcept {
#if COIL_TSAN
  if (fiber) __tsan_destroy_fiber(fiber);
#else
  (void)fiber;
#endif
}

}  // namespace coil::detail
