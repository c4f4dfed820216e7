#include "green.hpp"

#include <atomic>

#include "coroutine.hpp"
#include "green_thread.hpp"
#include "running.hpp"
#include "scheduler_impl.hpp"

namespace coil::preload {
namespace {

// Set once, before main()'s coroutine starts; read on every pthread call after.
std::atomic<bool> green{false};

// Written once before main() runs (and before any worker runs a green thread), read after.
std::vector<detail::SchedulerImpl*>* placement = nullptr;
std::atomic<unsigned> next_worker{0};
std::atomic<bool> several{false};

}  // namespace

void set_workers(std::vector<detail::SchedulerImpl*> workers) {
  if (workers.size() > 1) several.store(true, std::memory_order_relaxed);
  // Never freed: a fork()ed child's call replaces it while the parent's copy may be in use.
  placement = new std::vector<detail::SchedulerImpl*>(std::move(workers));
}

bool several_workers() noexcept { return several.load(std::memory_order_relaxed); }

detail::SchedulerImpl& pick_worker() noexcept {
  if (!placement || placement->size() == 1) return *detail::SchedulerImpl::current();
  unsigned i = next_worker.fetch_add(1, std::memory_order_relaxed);
  return *(*placement)[i % placement->size()];
}

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
