// The pthread calls about threads, for green threads: create, join, detach, exit, self, equal,
// once, and the calls that take a pthread_t and would hand a green one to glibc (which would read
// it as its own thread descriptor). Every hook is the plain glibc call unless the caller is a
// green thread (green.hpp), or the pthread_t is not a green thread's.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>

#include "coil/detail/spin_lock.hpp"
#include "coil/scheduler.hpp"
#include "coroutine.hpp"
#include "green.hpp"
#include "green_futex.hpp"
#include "green_thread.hpp"
#include "options.hpp"
#include "real_pthread.hpp"
#include "running.hpp"
#include "scheduler_impl.hpp"
#include "sync_util.hpp"

namespace coil::preload {
namespace {

// Green thread ids start far above any tid (pid_max is at most 2^22), so that a mutex's owner
// field, which holds a tid for glibc and an id for coil, never confuses a native thread with a
// green one.
constexpr std::uint32_t kFirstId = std::uint32_t{1} << 30;
std::atomic<std::uint32_t> last_id{kFirstId - 1};
std::atomic<bool> main_gone{false};
detail::Coroutine* main_coroutine = nullptr;

// Under --native-threads the program's threads are glibc's, and a main() that calls
// pthread_exit() must still leave the process running until the last of them ends (coil's own
// threads, which never end, do not count): NativeStart counts them.
std::atomic<int> live_native{0};

void native_thread_ended() {
  if (live_native.fetch_sub(1) == 1 && main_gone.load()) std::exit(0);
}

struct NativeStart {
  void* (*start)(void*);
  void* arg;
};

// run_native() is a counted native thread: the guard's destructor also runs when pthread_exit
// unwinds the thread.
void* run_native(void* p) {
  NativeStart start = *static_cast<NativeStart*>(p);
  delete static_cast<NativeStart*>(p);
  struct Ended {
    ~Ended() { native_thread_ended(); }
  } ended;
  return start.start(start.arg);
}

int create_native(pthread_t* out, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  if (detail::tls_internal != 0) return real::pthread_create(out, attr, start, arg);
  auto* p = new (std::nothrow) NativeStart{start, arg};
  if (!p) return EAGAIN;
  live_native.fetch_add(1);
  int rc = real::pthread_create(out, attr, run_native, p);
  if (rc != 0) {
    live_native.fetch_sub(1);
    delete p;
  }
  return rc;
}

// The live green threads' records, so that a pthread_t can be told to be one (and a stale or
// native one passed to glibc). Green threads of every worker use it, under its lock.
struct Registry {
  detail::SpinLock lock;
  std::unordered_set<const GreenThread*> threads;
};

Registry& registry() {
  static auto* r = new Registry;  // outlives exit()
  return *r;
}

GreenThread* green_of(pthread_t handle) {
  auto* t = reinterpret_cast<GreenThread*>(handle);
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  return r.threads.count(t) ? t : nullptr;
}

// The green threads not yet finished, main() excepted: with several workers, the process ends
// when the last one finishes after main() called pthread_exit() (finish()).
std::atomic<long> unfinished{0};

GreenThread* make_record() {
  auto* t = new GreenThread;
  t->id = last_id.fetch_add(1, std::memory_order_relaxed) + 1;
  Registry& r = registry();
  std::lock_guard guard(r.lock);
  r.threads.insert(t);
  return t;
}

void forget(GreenThread* t) {
  {
    Registry& r = registry();
    std::lock_guard guard(r.lock);
    r.threads.erase(t);
  }
  delete t;
}

// adopt() makes co the coroutine of green thread t: what current_green_thread() reads, and the
// stack pthread_getattr_np reports.
void adopt(GreenThread* t, detail::Coroutine* co) noexcept {
  co->local = t;
  t->os_thread.store(real::pthread_self(), std::memory_order_release);
  t->stack_lo = co->stack.lo;
  t->stack_size = static_cast<std::size_t>(co->usable_stack_hi() - co->stack.lo);
}

// finish() ends green thread t after its start routine returned or it called pthread_exit.
void finish(GreenThread* t) noexcept {
  run_key_destructors(t);
  const bool is_main = t->is_main;
  bool detached;
  {
    MonitorScope scope(&t->done);  // against a detach or join on another worker
    t->done.store(1, std::memory_order_release);
    detached = t->detached;
    if (!detached) futex_wake(&t->done, INT_MAX);
  }
  if (detached) forget(t);
  if (!is_main && unfinished.fetch_sub(1) == 1 && main_gone.load() && several_workers()) {
    after_main_exited();  // the last green thread after main()'s pthread_exit: the process ends
  }
}

// run_thread() is a green thread's coroutine. noexcept: an exception escaping the start routine
// ends the process through std::terminate, as it does for a pthread.
void run_thread(GreenThread* t) noexcept {
  adopt(t, detail::current_coroutine());
  try {
    t->result = t->start(t->arg);
  } catch (const GreenExit& exit) {
    t->result = exit.value;
  }
  finish(t);
}

// default_stack_size() is --stack-size, read once (start-up has checked it).
std::size_t default_stack_size() {
  static const std::size_t size = [] {
    Options opts;
    std::string ignored;
    (void)options_from_env(&opts, &ignored);
    return opts.stack_size;
  }();
  return size;
}

// glibc keeps a size the program never set as 0 in the attr, and pthread_attr_getstacksize()
// reports the process default for it, so an explicit 8 MiB could not be told from none. The
// field is read where glibc 2.3x keeps it (struct pthread_attr: schedparam, schedpolicy, flags,
// guardsize, stackaddr, stacksize), once a probe has shown that it is there.
constexpr std::size_t kStackSizeOffset = 32;

std::size_t stored_stack_size(const pthread_attr_t* attr) {
  std::size_t size;
  memcpy(&size, reinterpret_cast<const char*>(attr) + kStackSizeOffset, sizeof size);
  return size;
}

bool layout_known() {
  static const bool known = [] {
    constexpr std::size_t kProbe = 3 * 1024 * 1024 + 4096;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return false;
    bool ok = stored_stack_size(&attr) == 0 && pthread_attr_setstacksize(&attr, kProbe) == 0 &&
              stored_stack_size(&attr) == kProbe;
    pthread_attr_destroy(&attr);
    return ok;
  }();
  return known;
}

// stack_size_of() is the stack a new green thread gets: the attr's size if the program set one,
// else the --stack-size default. Where glibc's layout is not the one known, a size equal to
// glibc's default counts as not set.
std::size_t stack_size_of(const pthread_attr_t* attr) {
  if (!attr) return default_stack_size();
  std::size_t size = 0;
  pthread_attr_getstacksize(attr, &size);
  bool set;
  if (layout_known()) {
    set = stored_stack_size(attr) != 0;
  } else {
    pthread_attr_t fresh;
    std::size_t fallback = 0;
    pthread_attr_init(&fresh);
    pthread_attr_getstacksize(&fresh, &fallback);
    pthread_attr_destroy(&fresh);
    set = size != fallback;
  }
  return set ? std::max(size, kMinStackSize) : default_stack_size();
}

bool detached_in(const pthread_attr_t* attr) {
  int state = PTHREAD_CREATE_JOINABLE;
  return attr && pthread_attr_getdetachstate(attr, &state) == 0 && state == PTHREAD_CREATE_DETACHED;
}

// spawn_thread() starts t's coroutine on sched: 0, or EAGAIN without memory for its stack (what
// glibc says). A spawn posted from another worker cannot report that to pthread_create(), which
// has returned: the process ends with the reason instead.
int spawn_thread(detail::SchedulerImpl& sched, GreenThread* t, bool posted) {
  try {
    Scheduler::spawn_on(
        sched, [t] { run_thread(t); }, SpawnOptions{.name = "pthread", .stack_size = t->stack_size})
        .detach();
    return 0;
  } catch (const std::exception& e) {
    if (posted) {
      std::fprintf(stderr, "coil: no coroutine for a new thread on another worker: %s\n", e.what());
      std::abort();
    }
    unfinished.fetch_sub(1);
    forget(t);
    return EAGAIN;
  }
}

int create_green(pthread_t* out, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  GreenThread* t;
  try {
    t = make_record();
  } catch (const std::bad_alloc&) {
    return EAGAIN;
  }
  t->start = start;
  t->arg = arg;
  t->detached = detached_in(attr);
  t->stack_size = stack_size_of(attr);
  detail::SchedulerImpl& here = detail::current_scheduler_or_throw();
  detail::SchedulerImpl& target = pick_worker();
  unfinished.fetch_add(1);
  *out = reinterpret_cast<pthread_t>(t);
  if (&target != &here) {  // another worker makes the coroutine (its stack pool is its own)
    target.post([t] { spawn_thread(detail::current_scheduler_or_throw(), t, /*posted=*/true); });
    return 0;
  }
  return spawn_thread(here, t, /*posted=*/false);
}

// join_green() waits for t (until deadline) and collects it.
int join_green(GreenThread* t, void** result, TimePoint deadline) {
  GreenThread* self = current_green_thread();
  if (t == self) return EDEADLK;
  {
    MonitorScope scope(&t->done);
    if (t->detached || t->joining) return EINVAL;
    t->joining = true;
    while (t->done.load(std::memory_order_acquire) == 0) {
      if (futex_wait(&t->done, 0, deadline) == FutexResult::kTimeout &&
          t->done.load(std::memory_order_acquire) == 0) {
        t->joining = false;
        return deadline == TimePoint::min() ? EBUSY : ETIMEDOUT;
      }
    }
  }
  if (result) *result = t->result;
  forget(t);
  return 0;
}

// The pthread_once control word, as glibc lays it out: bit 0 running, bit 1 done, and the
// fork generation (a multiple of 4) of the process that began a run. A child of fork() whose
// parent was in the middle of a run (on a thread the child does not have) starts it again.
constexpr std::uint32_t kOnceRunning = 1, kOnceDone = 2;
std::atomic<std::uint32_t> fork_generation{0};

// OnceRun is a run of a once routine: it ends it as done, or, if the routine left by an exception
// or pthread_exit(), as never run, waking the green threads that waited either way (glibc's
// cleanup handler does the same).
struct OnceRun {
  std::atomic<std::uint32_t>* word;
  bool done = false;
  ~OnceRun() {
    word->store(done ? kOnceDone : 0, std::memory_order_release);
    futex_wake(word, INT_MAX);
  }
};

// once_green() runs pthread_once for a green thread. A run in progress on a native thread (whose
// wake-up would not reach a green waiter) is waited for by polling, 1 ms at a time.
int once_green(pthread_once_t* control, void (*routine)()) {
  auto* word = reinterpret_cast<std::atomic<std::uint32_t>*>(control);
  static_assert(sizeof(pthread_once_t) == sizeof(std::uint32_t));
  const std::uint32_t mine = fork_generation.load(std::memory_order_relaxed) | kOnceRunning;
  for (;;) {
    std::uint32_t state = word->load(std::memory_order_acquire);
    if (state & kOnceDone) return 0;
    bool stale = (state & kOnceRunning) && state != mine;  // begun before a fork
    if ((state == 0 || stale) && word->compare_exchange_strong(state, mine)) break;
    futex_wait(word, state, std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
  }
  OnceRun run{word};
  routine();
  run.done = true;
  return 0;
}

}  // namespace

void adopt_main() {
  main_coroutine = detail::current_coroutine();
  if (!green_mode()) return;
  GreenThread* t = make_record();
  t->is_main = true;
  adopt(t, main_coroutine);
}

bool main_exited() noexcept { return main_gone.load(); }

void after_main_exited() {
  static std::atomic<bool> once{false};
  if (once.exchange(true)) {  // another worker's last thread got here too: exit() is under way
    for (;;) pause();
  }
  if (green_mode() || live_native.load() == 0) std::exit(0);
  real::pthread_exit.get()(nullptr);  // the last native thread's end calls exit(0)
  std::abort();                       // not reached
}

void after_fork_in_child() noexcept {
  live_native.store(0);
  fork_generation.fetch_add(4, std::memory_order_relaxed);
  futex_forget_all();
  const GreenThread* me = current_green_thread();
  if (me && !me->is_main) main_gone.store(true);
  unfinished.store(me && !me->is_main ? 1 : 0);  // the others are gone with their threads
  if (detail::SchedulerImpl* here = detail::SchedulerImpl::current()) set_workers({here});
}

void finish_main() noexcept {
  if (GreenThread* t = current_green_thread()) finish(t);
  // With several workers the main scheduler never runs dry (it keeps itself alive for the
  // others), so the end after main()'s pthread_exit() is counted here and in finish().
  if (several_workers() && unfinished.load() == 0) after_main_exited();
}

}  // namespace coil::preload

using namespace coil::preload;

COIL_HOOK int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                             void* arg) {
  // Before main() and under --native-threads, and for coil's own threads: a real thread.
  if (!in_green_thread()) {
    if (green_mode() || !main_coroutine) return real::pthread_create(thread, attr, start, arg);
    return create_native(thread, attr, start, arg);
  }
  return create_green(thread, attr, start, arg);
}

COIL_HOOK int pthread_join(pthread_t thread, void** result) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_join(thread, result);
  return join_green(t, result, coil::kNoDeadline);
}

COIL_HOOK int pthread_tryjoin_np(pthread_t thread, void** result) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_tryjoin_np(thread, result);
  // glibc's first check; a program that polls lets the thread run meanwhile.
  if (t->done.load(std::memory_order_acquire) == 0) return sync::after_refusal(EBUSY);
  return join_green(t, result, coil::TimePoint::min());
}

COIL_HOOK int pthread_timedjoin_np(pthread_t thread, void** result,
                                   const struct timespec* abstime) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_timedjoin_np(thread, result, abstime);
  if (!abstime) return join_green(t, result, coil::kNoDeadline);
  if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
  return join_green(t, result, deadline_from(CLOCK_REALTIME, *abstime));
}

COIL_HOOK int pthread_detach(pthread_t thread) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_detach(thread);
  bool finished;
  {
    MonitorScope scope(&t->done);  // against its finish() on another worker
    if (t->detached) return EINVAL;
    if (t->joining) return 0;  // as glibc: the joiner still collects it
    finished = t->done.load(std::memory_order_acquire) != 0;
    if (!finished) t->detached = true;
  }
  if (finished) forget(t);  // nobody will join it
  return 0;
}

COIL_HOOK void pthread_exit(void* value) {
  // main()'s coroutine, green or not, unwinds to its start; glibc's pthread_exit would unwind the
  // OS thread's whole stack through it.
  bool in_main = main_coroutine && coil::detail::tls_running == main_coroutine;
  // Not through Real::operator(), which is noexcept: glibc unwinds this frame.
  if (!in_main && !current_green_thread()) real::pthread_exit.get()(value);
  if (in_main) main_gone.store(true);
  throw GreenExit{value};
}

COIL_HOOK pthread_t pthread_self() {
  GreenThread* t = current_green_thread();
  return t ? reinterpret_cast<pthread_t>(t) : real::pthread_self();
}

COIL_HOOK int pthread_equal(pthread_t a, pthread_t b) { return a == b; }

COIL_HOOK int pthread_once(pthread_once_t* control, void (*routine)()) {
  if (!in_green_thread()) return real::pthread_once(control, routine);
  return once_green(control, routine);
}

// pthread_getattr_np describes a green thread: its coroutine stack and detach state. The stack's
// address is known once the thread has first run; before, the attr has only its size.
COIL_HOOK int pthread_getattr_np(pthread_t thread, pthread_attr_t* attr) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_getattr_np(thread, attr);
  int rc = pthread_attr_init(attr);
  if (rc != 0) return rc;
  if (t->stack_lo) {
    pthread_attr_setstack(attr, t->stack_lo, t->stack_size);
  } else {  // not started yet: its stack is not known
    pthread_attr_setstacksize(attr, t->stack_size);
  }
  pthread_attr_setdetachstate(attr,
                              t->detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
  return 0;
}

COIL_HOOK int pthread_setname_np(pthread_t thread, const char* name) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_setname_np(thread, name);
  if (strlen(name) >= sizeof t->name) return ERANGE;
  strcpy(t->name, name);
  return 0;
}

COIL_HOOK int pthread_getname_np(pthread_t thread, char* name, size_t size) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_getname_np(thread, name, size);
  if (strlen(t->name) >= size) return ERANGE;
  strcpy(name, t->name);
  return 0;
}

// pthread_kill to a green thread: signal 0 checks that it exists; a real signal goes to the OS
// thread (worker) the green thread runs on, or, before it first ran, to the caller's (its
// handler runs there, in whichever green thread is running, and ends the waits of that worker
// that the signal interrupts).
COIL_HOOK int pthread_kill(pthread_t thread, int sig) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_kill(thread, sig);
  if (sig == 0) return t->done.load() ? ESRCH : 0;
  pthread_t os = t->os_thread.load(std::memory_order_acquire);
  return real::pthread_kill(os ? os : real::pthread_self(), sig);
}

// pthread_cancel: green threads cannot be cancelled (a limit README states).
COIL_HOOK int pthread_cancel(pthread_t thread) {
  GreenThread* t = in_green_thread() ? green_of(thread) : nullptr;
  if (!t) return real::pthread_cancel(thread);
  return ENOTSUP;
}
