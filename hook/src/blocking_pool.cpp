#include "blocking_pool.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "coil/detail/park.hpp"
#include "coil/scheduler.hpp"
#include "config.hpp"
#include "running.hpp"

namespace coil::hook {

namespace {

// Job is one call handed to the pool. It lives on the waiting coroutine's
// stack, which stays put until the job is done.
struct Job {
  void (*fn)(void*);
  void* arg;
  Scheduler* scheduler;
  detail::Coroutine* waiter;
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
};

}  // namespace

struct BlockingPool::State {
  const char* name;
  int max_threads;
  State* abandoned = nullptr;  // the state a fork() left behind, kept reachable (not a leak)
  std::mutex mutex;
  std::condition_variable wanted;
  std::deque<Job*> queue;
  int threads = 0;
  int idle = 0;

  void submit(Job* job);
  void work();
  static void complete(Job* job);
};

void BlockingPool::State::submit(Job* job) {
  std::unique_lock lock(mutex);
  queue.push_back(job);
  if (idle > 0 || threads >= max_threads) {
    wanted.notify_one();
    return;
  }
  ++threads;
  lock.unlock();
  // Pool threads block every signal (they inherit the mask at creation):
  // a signal for the process must go to a thread of the program, where a
  // blocked call, or a coroutine's, can see EINTR.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  try {
    std::thread([this] { work(); }).detach();
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  } catch (const std::system_error&) {
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    lock.lock();
    if (--threads == 0) {
      // No thread at all: run the call here rather than never.
      queue.pop_back();
      lock.unlock();
      job->fn(job->arg);
      job->done = true;
    }
  }
}

void BlockingPool::State::work() {
  char title[16];  // "coil-resolver" in top, gdb and /proc/PID/task/TID/comm
  std::snprintf(title, sizeof title, "coil-%s", name);
  pthread_setname_np(pthread_self(), title);
  std::unique_lock lock(mutex);
  for (;;) {
    ++idle;
    wanted.wait(lock, [this] { return !queue.empty(); });
    --idle;
    Job* job = queue.front();
    queue.pop_front();
    lock.unlock();
    job->fn(job->arg);
    complete(job);
    lock.lock();
  }
}

void BlockingPool::State::complete(Job* job) {
  std::lock_guard lock(job->mutex);
  job->done = true;
  detail::Coroutine* waiter = job->waiter;
  // Posted, the wake runs on the scheduler's thread; if the scheduler is
  // being destroyed instead, it never runs and the waiter below unwinds.
  job->scheduler->post([waiter] { detail::wake(waiter); });
  job->finished.notify_all();
}

void BlockingPool::run_erased(void (*fn)(void*), void* arg) {
  Scheduler* scheduler = detail::tls_running ? Scheduler::current() : nullptr;
  if (!scheduler) {
    fn(arg);
    return;
  }
  Job job{fn, arg, scheduler, detail::current_coroutine()};
  Scheduler::KeepAlive keep(*scheduler);  // run() waits for the wake-up
  {
    detail::InternalScope internal;  // the pool's own mutex and threads
    state_->submit(&job);
  }
  try {
    for (;;) {
      {
        detail::InternalScope internal;
        std::lock_guard lock(job.mutex);
        if (job.done) return;
      }
      detail::park();
    }
  } catch (...) {
    // The scheduler is unwinding this coroutine: its stack, which the call
    // may be writing to, must outlive the call.
    detail::InternalScope internal;
    std::unique_lock lock(job.mutex);
    job.finished.wait(lock, [&] { return job.done; });
    throw;
  }
}

namespace {

BlockingPool::State* make_state(const char* name, int threads,
                                BlockingPool::State* abandoned = nullptr) {
  auto* s = new BlockingPool::State;  // never freed: detached threads use it
  s->name = name;
  s->max_threads = threads;
  s->abandoned = abandoned;
  return s;
}

}  // namespace

BlockingPool& BlockingPool::resolver() noexcept {
  static BlockingPool pool(make_state("resolver", config().resolver_threads));
  return pool;
}

BlockingPool& BlockingPool::files() noexcept {
  static BlockingPool pool(make_state("files", config().file_threads));
  return pool;
}

void BlockingPool::reset_after_fork() noexcept {
  // The parent's threads do not exist in the child: start from none. The
  // old state (its mutex may have been held at fork) is abandoned.
  BlockingPool& r = BlockingPool::resolver();
  BlockingPool& f = BlockingPool::files();
  State* old_r = r.state_;
  State* old_f = f.state_;
  r.~BlockingPool();
  new (&r) BlockingPool(make_state("resolver", config().resolver_threads, old_r));
  f.~BlockingPool();
  new (&f) BlockingPool(make_state("files", config().file_threads, old_f));
}

}  // namespace coil::hook
