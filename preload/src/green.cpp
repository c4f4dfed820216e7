#include "green.hpp"

#include <atomic>

#include "coroutine.hpp"
#include "green_thread.hpp"
#include "running.hpp"

namespace coil::preload {
namespace {

// Set once, before main()'s coroutine starts; read on every pthread call after.
std::atomic<bool> green{false};

}  // namespace

void enable_green_mode() noexcept { green.store(true, std::memory_order_release); }

bool green_mode() noexcept { return green.load(std::memory_order_relaxed); }

bool in_green_thread() noexcept {
  return detail::tls_running != nullptr && detail::tls_internal == 0 && green_mode();
}

GreenThread* current_green_thread() noexcept {
  if (!in_green_thread()) return nullptr;
  return static_cast<GreenThread*>(detail::tls_running->local);
}

std::uint32_t green_id() noexcept {
  GreenThread* t = current_green_thread();
  return t ? t->id : 0;
}

}  // namespace coil::preload
