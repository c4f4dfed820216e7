// coil::Runtime: several worker threads, each running its own Scheduler, so
// that coroutines use more than one CPU.
//
//   coil::Runtime rt({.workers = 2});
//   coil::WaitGroup wg;
//   wg.add(2);
//   rt.go_on(0, [&] { ...; wg.done(); });
//   rt.go_on(1, [&] { ...; wg.done(); });
//   rt.wait();  // until every coroutine on every worker has finished
//
// A coroutine stays on the worker it was spawned on; inside it, coil::go()
// and the hooked calls use that worker's scheduler. The sync primitives
// (Mutex, CondVar, Channel, WaitGroup, Semaphore) work between coroutines of
// different workers: a wake-up for another worker goes into that worker's
// inbox and, if it sleeps in epoll, writes its eventfd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coil/scheduler.hpp"

namespace coil {

// RuntimeOptions configure a Runtime.
struct RuntimeOptions {
  int workers = 1;   // worker threads; 0: one per CPU this process may use
  bool pin = false;  // pin worker i to the i-th CPU this process may use
  std::size_t stack_size = kDefaultStackSize;  // default stack of the workers' coroutines
};

// Runtime owns its worker threads from construction to destruction.
class Runtime {
 public:
  // Runtime() starts the workers. Throws std::invalid_argument for a worker
  // count below 0 or above 1024, std::system_error if a thread cannot be
  // started or pinned.
  explicit Runtime(RuntimeOptions opts = {});
  // ~Runtime() waits for every coroutine to finish (wait()), then stops and
  // joins the workers.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // workers() is the number of worker threads.
  int workers() const noexcept { return static_cast<int>(workers_.size()); }

  // go() spawns fn as a detached coroutine on the next worker, round robin.
  template <class F>
  void go(F&& fn, SpawnOptions opts = {}) {
    go_on(next_worker(), std::forward<F>(fn), opts);
  }

  // go_on() spawns fn as a detached coroutine on worker (0 <= worker <
  // workers(), else std::out_of_range). From that worker's own thread it is
  // coil::go(); from any other thread the spawn is posted to the worker. An
  // exception escaping fn terminates the process, as for any detached
  // coroutine; a spawn the worker cannot make (no memory for a stack) ends
  // the process with a message.
  template <class F>
  void go_on(int worker, F&& fn, SpawnOptions opts = {}) {
    detail::SchedulerImpl& target = scheduler_of(worker);
    if (runs_on(target)) {
      Scheduler::spawn_on(target, std::forward<F>(fn), opts).detach();
      return;
    }
    auto task = std::make_shared<std::decay_t<F>>(std::forward<F>(fn));
    post_spawn(target, [task, name = std::string(opts.name),
                        size = opts.stack_size](detail::SchedulerImpl& on) {
      Scheduler::spawn_on(on, std::move(*task), SpawnOptions{.name = name, .stack_size = size})
          .detach();
    });
  }

  // wait() blocks the calling thread until no coroutine is left on any
  // worker (those spawned through the runtime and all they spawned). The
  // runtime stays up: more may be spawned after. Precondition: not called
  // from a coroutine of this runtime (it would wait for itself).
  void wait();

  // scheduler() is worker's scheduler, for coil's own layers (coil-run places green threads on
  // the workers with it). Throws std::out_of_range like go_on().
  detail::SchedulerImpl& scheduler(int worker) const { return scheduler_of(worker); }

  // current_worker() is the index of the worker whose thread calls it, or -1
  // on a thread that is not a worker of any Runtime.
  static int current_worker() noexcept;

 private:
  struct Worker;
  struct Shared;

  int next_worker() noexcept;
  detail::SchedulerImpl& scheduler_of(int worker) const;
  static bool runs_on(const detail::SchedulerImpl& sched) noexcept;
  void post_spawn(detail::SchedulerImpl& target, std::function<void(detail::SchedulerImpl&)> spawn);
  static void pin(Worker& w, int cpu, std::exception_ptr* failure);
  void stop() noexcept;

  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace coil
