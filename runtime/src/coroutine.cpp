// A coroutine's life: create, start, run, exit, join or detach, release.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "sanitizer.hpp"
#include "scheduler_impl.hpp"

namespace coil::detail {
namespace {

std::atomic<std::uint64_t> next_coroutine_id{1};

// Room a coroutine needs below its control block and body for its frames.
constexpr std::size_t kMinFrameRoom = 8 * 1024;

char* align_down(char* p, std::size_t align) noexcept {
  return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(align - 1));
}

[[noreturn]] void die_uncaught(const Coroutine* co, const std::exception_ptr& error) noexcept {
  std::string what = "an exception not derived from std::exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = std::string("std::exception: ") + e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "coil: uncaught exception in detached coroutine %llu \"%s\": %s\n",
               static_cast<unsigned long long>(co->id), co->name, what.c_str());
  std::fflush(stderr);
  std::abort();
}

// coroutine_main() is the first function on every coroutine stack.
[[noreturn]] void coroutine_main(void* arg) noexcept {
  auto* co = static_cast<Coroutine*>(arg);
  SchedulerImpl* sched = co->scheduler;
  finish_first_switch();
  if (!co->cancelled) {
    try {
      co->body->invoke();
    } catch (const ForcedUnwind&) {
    } catch (...) {
      co->body->error = std::current_exception();
    }
  }
  co->body->release_function();
  if (co->body->error && co->detached) die_uncaught(co, co->body->error);
  sched->exit_current();
}

}  // namespace

Coroutine* SchedulerImpl::create(const SpawnOptions& opts, std::size_t body_size,
                                 std::size_t body_align, void** body_memory) {
  std::size_t size = opts.stack_size ? opts.stack_size : default_stack_size_;
  Stack stack = stacks_.acquire(size);
  char* co_mem = align_down(stack.hi - sizeof(Coroutine), alignof(Coroutine));
  char* body = align_down(co_mem - body_size, std::max<std::size_t>(body_align, 16));
  if (body < stack.lo + kMinFrameRoom) {
    stacks_.release(stack);
    throw std::length_error("coil: spawn: the function object (" + std::to_string(body_size) +
                            " bytes) does not fit a " + std::to_string(stack.size()) +
                            "-byte stack; capture less or raise the stack size");
  }
  auto* co = ::new (co_mem) Coroutine;
  co->scheduler = this;
  co->stack = stack;
  co->canary = stack.guard == GuardMode::kCanary;
  co->id = next_coroutine_id.fetch_add(1, std::memory_order_relaxed);
  std::size_t n = std::min(opts.name.size(), Coroutine::kNameSize - 1);
  if (n) std::memcpy(co->name, opts.name.data(), n);
  co->name[n] = '\0';
  co->tsan_fiber = tsan_create_fiber();
  context_init(&co->context, stack.lo, body, &coroutine_main, co);
  all_.push_back(*co);
  *body_memory = body;
  return co;
}

void SchedulerImpl::start(Coroutine* co, BodyBase* body) noexcept {
  co->body = body;
  ++spawns_;
  ++live_;
  if (live_.get() > peak_.get()) peak_.set(live_.get());
  if (shared_live) shared_live->add();
  make_ready(co);
}

void SchedulerImpl::join(Coroutine* co) {
  if (co->state.load(std::memory_order_relaxed) == CoState::kDone) return;
  Coroutine* self = running_;
  if (!self || co->scheduler != this) {
    throw std::logic_error(
        "coil: join() outside a coroutine of its scheduler on a coroutine that has not "
        "finished; call it from a coroutine or after run()");
  }
  co->joiner = self;
  struct Forget {  // also when park() throws ForcedUnwind: self is going away
    Coroutine* co;
    ~Forget() { co->joiner = nullptr; }
  } forget{co};
  while (co->state.load(std::memory_order_relaxed) != CoState::kDone) park(kNoDeadline);
}

void SchedulerImpl::destroy_body(Coroutine* co) noexcept {
  if (co->body) {
    co->body->~BodyBase();
    co->body = nullptr;
  }
}

void SchedulerImpl::release(Coroutine* co) noexcept {
  if (co->ready_hook.is_linked()) ready_.erase(ready_.iterator_to(*co));
  if (co->sleep_hook.is_linked()) sleeping_.erase(sleeping_.iterator_to(*co));
  all_.erase(all_.iterator_to(*co));
  destroy_body(co);
  tsan_destroy_fiber(co->tsan_fiber);
  Stack stack = co->stack;
  co->~Coroutine();
  asan_forget_stack(stack.lo, stack.size());
  stacks_.release(stack);
}

void SchedulerImpl::detach(Coroutine* co) noexcept {
  if (co->state.load(std::memory_order_relaxed) != CoState::kDone) {
    co->detached = true;
    return;
  }
  if (co->body && co->body->error) die_uncaught(co, co->body->error);
  release(co);
}

void SchedulerImpl::after_exit(Coroutine* co) noexcept {
  if (co->detached) release(co);  // else its JoinHandle (or unwind_all) does
}

// Entry points declared in coil/scheduler.hpp.

Coroutine* create_coroutine(SchedulerImpl& sched, const SpawnOptions& opts, std::size_t body_size,
                            std::size_t body_align, void** body_memory) {
  return sched.create(opts, body_size, body_align, body_memory);
}

void start_coroutine(Coroutine* co, BodyBase* body) noexcept { co->scheduler->start(co, body); }

void join_coroutine(Coroutine* co) { co->scheduler->join(co); }

BodyBase* coroutine_body(Coroutine* co) noexcept { return co->body; }

void release_coroutine(Coroutine* co) noexcept { co->scheduler->release(co); }

void detach_coroutine(Coroutine* co) noexcept { co->scheduler->detach(co); }

}  // namespace coil::detail
