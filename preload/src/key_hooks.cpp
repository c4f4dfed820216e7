// pthread keys for green threads. Keys themselves come from glibc (pthread_key_create is passed
// through, so native and green threads agree on them); each green thread keeps its own values,
// and its exit runs the keys' destructors as a thread's exit does.
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <cstdint>

#include "green.hpp"
#include "green_thread.hpp"
#include "real_pthread.hpp"

namespace coil::preload {
namespace {

using Destructor = void (*)(void*);

// What glibc keeps about each key and does not tell: its destructor, and a generation that
// changes when it is deleted (0: not created).
struct Key {
  std::atomic<Destructor> destructor{nullptr};
  std::atomic<std::uint32_t> generation{0};
};

constinit std::array<Key, PTHREAD_KEYS_MAX> keys{};
constinit std::atomic<std::uint32_t> generations{0};

bool valid(pthread_key_t key) noexcept {
  return key < PTHREAD_KEYS_MAX && keys[key].generation.load(std::memory_order_acquire) != 0;
}

KeySlot* slot_of(GreenThread* t, pthread_key_t key) {
  if (t->keys.size() <= key) t->keys.resize(key + 1);
  return &t->keys[key];
}

}  // namespace

void run_key_destructors(GreenThread* t) noexcept {
  for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
    bool called = false;
    for (pthread_key_t key = 0; key < t->keys.size(); ++key) {
      KeySlot& slot = t->keys[key];
      Destructor destructor = keys[key].destructor.load(std::memory_order_acquire);
      if (!slot.value || slot.generation != keys[key].generation.load() || !destructor) continue;
      void* value = slot.value;
      slot.value = nullptr;
      destructor(value);
      called = true;
    }
    if (!called) return;
  }
}

}  // namespace coil::preload

using namespace coil::preload;

COIL_HOOK int pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) {
  int rc = real::pthread_key_create(key, destructor);
  if (rc == 0 && *key < PTHREAD_KEYS_MAX) {
    keys[*key].destructor.store(destructor, std::memory_order_relaxed);
    keys[*key].generation.store(generations.fetch_add(1) + 1, std::memory_order_release);
  }
  return rc;
}

COIL_HOOK int pthread_key_delete(pthread_key_t key) {
  int rc = real::pthread_key_delete(key);
  if (rc == 0 && key < PTHREAD_KEYS_MAX) {
    keys[key].generation.store(0, std::memory_order_release);
    keys[key].destructor.store(nullptr, std::memory_order_relaxed);
  }
  return rc;
}

COIL_HOOK void* pthread_getspecific(pthread_key_t key) {
  GreenThread* t = current_green_thread();
  if (!t) return real::pthread_getspecific(key);
  if (!valid(key) || key >= t->keys.size()) return nullptr;
  const KeySlot& slot = t->keys[key];
  return slot.generation == keys[key].generation.load(std::memory_order_acquire) ? slot.value
                                                                                 : nullptr;
}

COIL_HOOK int pthread_setspecific(pthread_key_t key, const void* value) {
  GreenThread* t = current_green_thread();
  if (!t) return real::pthread_setspecific(key, value);
  if (!valid(key)) return EINVAL;
  try {
    KeySlot* slot = slot_of(t, key);
    slot->generation = keys[key].generation.load(std::memory_order_acquire);
    slot->value = const_cast<void*>(value);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  return 0;
}
