// Runtime: worker threads, each inside Scheduler::run() for the runtime's
// whole life (a keep-alive holds every run() open), and one count of live
// coroutines over all of them, which wait() watches.
#include "coil/runtime.hpp"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "running.hpp"
#include "scheduler_impl.hpp"

namespace coil {
namespace {

thread_local int tls_worker = -1;

constexpr int kMaxWorkers = 1024;

// usable_cpus() lists the CPUs this process may run on, in order.
std::vector<int> usable_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

}  // namespace

// Shared is what the workers and wait() share: the live count and the
// condition variable wait() sleeps on. coil's own pthread objects, hence the
// InternalScopes (under coil-run a coroutine's pthread calls are emulated).
struct Runtime::Shared {
  detail::SchedulerImpl::LiveCount live;
  std::mutex mutex;
  std::condition_variable idle;
  std::atomic<unsigned> next{0};  // go()'s round robin

  static void on_zero(void* arg) noexcept {
    auto* self = static_cast<Shared*>(arg);
    detail::InternalScope internal;
    std::lock_guard lock(self->mutex);
    self->idle.notify_all();
  }
};

struct Runtime::Worker {
  std::thread thread;
  detail::SchedulerImpl* sched = nullptr;  // set by the thread before the start-up latch
  int index = 0;
  // stop() is done with sched: the thread may destroy it. drop_keep_alive() lets run() return
  // before it has finished writing the eventfd.
  std::latch released{1};
};

Runtime::Runtime(RuntimeOptions opts) : shared_(std::make_unique<Shared>()) {
  const std::vector<int> cpus = usable_cpus();
  int n = opts.workers == 0 ? static_cast<int>(cpus.size()) : opts.workers;
  if (n < 1 || n > kMaxWorkers) {
    throw std::invalid_argument("coil: Runtime with " + std::to_string(opts.workers) +
                                " workers; use 1 to " + std::to_string(kMaxWorkers) +
                                ", or 0 for one per CPU");
  }
  shared_->live.on_zero = &Shared::on_zero;
  shared_->live.arg = shared_.get();
  detail::InternalScope internal;  // std::thread is pthread_create
  std::latch started(n);
  workers_.reserve(static_cast<std::size_t>(n));
  std::exception_ptr failure;
  for (int i = 0; i < n && !failure; ++i) {
    auto& w = workers_.emplace_back(std::make_unique<Worker>());
    w->index = i;
    try {
      w->thread = std::thread([this, raw = w.get(), &started, stack = opts.stack_size] {
        tls_worker = raw->index;
        Scheduler sched(SchedulerOptions{.stack_size = stack});
        sched.impl().shared_live = &shared_->live;
        sched.impl().add_keep_alive();  // dropped by stop()
        raw->sched = &sched.impl();
        started.count_down();
        sched.run();
        raw->released.wait();
      });
    } catch (...) {
      failure = std::current_exception();
      workers_.pop_back();
      break;
    }
    if (opts.pin) pin(*w, cpus[static_cast<std::size_t>(i) % cpus.size()], &failure);
  }
  started.count_down(n - static_cast<std::ptrdiff_t>(workers_.size()));  // never started
  started.wait();
  if (failure) {
    stop();
    std::rethrow_exception(failure);
  }
}

void Runtime::pin(Worker& w, int cpu, std::exception_ptr* failure) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int rc = pthread_setaffinity_np(w.thread.native_handle(), sizeof set, &set);
  if (rc != 0) {
    *failure = std::make_exception_ptr(std::system_error(
        rc, std::generic_category(), "coil: pinning worker " + std::to_string(w.index)));
  }
}

Runtime::~Runtime() {
  wait();
  stop();
}

void Runtime::stop() noexcept {
  for (auto& w : workers_) {
    if (w->sched) w->sched->drop_keep_alive();
    w->released.count_down();
  }
  detail::InternalScope internal;
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  workers_.clear();
}

void Runtime::wait() {
  detail::InternalScope internal;
  std::unique_lock lock(shared_->mutex);
  shared_->idle.wait(lock, [this] { return shared_->live.n.load(std::memory_order_acquire) == 0; });
}

int Runtime::current_worker() noexcept { return tls_worker; }

int Runtime::next_worker() noexcept {
  return static_cast<int>(shared_->next.fetch_add(1, std::memory_order_relaxed) % workers_.size());
}

detail::SchedulerImpl& Runtime::scheduler_of(int worker) const {
  if (worker < 0 || worker >= workers()) {
    throw std::out_of_range("coil: Runtime::go_on(" + std::to_string(worker) + ") with " +
                            std::to_string(workers()) + " worker(s)");
  }
  return *workers_[static_cast<std::size_t>(worker)]->sched;
}

bool Runtime::runs_on(const detail::SchedulerImpl& sched) noexcept {
  return detail::SchedulerImpl::current() == &sched;
}

void Runtime::post_spawn(detail::SchedulerImpl& target,
                         std::function<void(detail::SchedulerImpl&)> spawn) {
  shared_->live.add();  // the spawn in flight counts, so wait() cannot miss it
  target.post([this, &target, spawn = std::move(spawn)] {
    try {
      spawn(target);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "coil: Runtime::go() could not spawn on worker: %s\n", e.what());
      std::abort();
    }
    shared_->live.drop();
  });
}

}  // namespace coil
