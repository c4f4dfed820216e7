// libcoil_preload.so's start-up: the program's main() becomes a coroutine.
//
// A dynamically linked program's _start calls glibc's __libc_start_main with the address of
// main(). This library, loaded first by LD_PRELOAD, defines __libc_start_main itself: it hands the
// real one (found with dlsym(RTLD_NEXT)) a stand-in main that reads the COIL_* settings, makes a
// scheduler on the program's main thread and runs the real main() as a coroutine on it. From then
// on, the hooked calls main() makes park its coroutine instead of blocking the thread.
//
// Everything before the stand-in runs (the dynamic loader, other libraries' constructors, the
// program's own constructors) sees no coroutine, so the hooks pass those calls straight through.
//
// A return from main() and exit() end the process as they always do: the coroutine calls exit()
// itself, so atexit handlers and static destructors run on its stack and the scheduler, with any
// coroutines still parked, is never torn down (the process ends around it).
#include <dlfcn.h>
#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "coil/runtime.hpp"
#include "coil/scheduler.hpp"
#include "green.hpp"
#include "green_thread.hpp"
#include "options.hpp"
#include "scheduler_impl.hpp"

namespace {

using MainFn = int (*)(int, char**, char**);
using StartFn = int (*)(MainFn, int, char**, void (*)(), void (*)(), void (*)(), void*);

MainFn program_main = nullptr;

// main_stack_size() is what main() gets: the native main thread's limit (RLIMIT_STACK, which
// is what a program's deepest recursion was tested against), at least kMainStackSize and the
// green threads' size, at most 256M when the limit is unlimited or larger.
std::size_t main_stack_size(const coil::preload::Options& opts) {
  constexpr std::size_t kCap = std::size_t{256} << 20;
  std::size_t size = std::max(coil::preload::kMainStackSize, opts.stack_size);
  rlimit rl{};
  if (getrlimit(RLIMIT_STACK, &rl) == 0) {
    size = std::max(size,
                    rl.rlim_cur == RLIM_INFINITY ? kCap : std::min<std::size_t>(rl.rlim_cur, kCap));
  }
  return size;
}

// read_options() returns the COIL_* settings, or ends the process with status 2 and the reason:
// the program has not started, so nothing is lost.
coil::preload::Options read_options() {
  coil::preload::Options opts;
  std::string error;
  if (!coil::preload::options_from_env(&opts, &error)) {
    std::fprintf(stderr, "coil: %s\n", error.c_str());
    std::exit(2);
  }
  return opts;
}

// run_main() is main()'s coroutine. noexcept: an exception escaping main() ends the process
// through std::terminate, as it does without coil. A pthread_exit() from main() ends only main's
// green thread; the process ends when the last one does (stand_in_main()).
void run_main(int argc, char** argv, char** envp) noexcept {
  int status;
  coil::preload::adopt_main();
  try {
    status = program_main(argc, argv, envp);
  } catch (const coil::preload::GreenExit&) {
    if (coil::preload::green_mode()) coil::preload::finish_main();
    return;
  }
  std::exit(status);
}

[[noreturn]] void die(const char* what, const char* why) {
  std::fprintf(stderr, "coil: %s%s\n", what, why);
  std::fflush(stderr);
  std::abort();
}

// start_workers() gives green threads the main thread's scheduler and, with --threads N, N - 1
// more: the workers of a coil::Runtime, which is never destroyed (the process ends by exit()).
// The main scheduler then keeps itself alive, since a green thread on another worker may wake
// one of its own at any time: the deadlock report of a single worker is lost.
void start_workers(coil::Scheduler& main_sched, const coil::preload::Options& opts) {
  std::vector<coil::detail::SchedulerImpl*> workers{&main_sched.impl()};
  if (opts.threads > 1) {
    auto* extra = new coil::Runtime({.workers = opts.threads - 1, .stack_size = opts.stack_size});
    for (int i = 0; i < extra->workers(); ++i) workers.push_back(&extra->scheduler(i));
    main_sched.impl().add_keep_alive();
  }
  coil::preload::set_workers(std::move(workers));
}

// stand_in_main() is the main() glibc calls: it runs the real one as a coroutine.
int stand_in_main(int argc, char** argv, char** envp) {
  const coil::preload::Options opts = read_options();
  const std::size_t stack = main_stack_size(opts);
  if (!opts.native_threads) coil::preload::enable_green_mode();
  ::pthread_atfork(nullptr, nullptr, [] { coil::preload::after_fork_in_child(); });
  if (opts.verbose) {
    std::fprintf(
        stderr,
        "coil: main() runs as a coroutine (stack %s), %d worker(s), %s threads (stack %s)\n",
        coil::preload::format_size(stack).c_str(), opts.threads,
        opts.native_threads ? "native" : "green",
        coil::preload::format_size(opts.stack_size).c_str());
  }
  try {
    // Never destroyed: the process ends by exit() from a coroutine, with the scheduler running.
    auto* sched = new coil::Scheduler(coil::SchedulerOptions{.stack_size = opts.stack_size});
    start_workers(*sched, opts);
    sched
        ->spawn([=] { run_main(argc, argv, envp); },
                coil::SpawnOptions{.name = "main", .stack_size = stack})
        .detach();
    sched->run();
  } catch (const coil::DeadlockError& e) {
    die("every thread is blocked for good, so the program can never go on: ", e.what());
  } catch (const std::exception& e) {
    die("cannot run main() as a coroutine: ", e.what());
  }
  // Every green thread has ended: after main()'s pthread_exit(), that is the process's end.
  if (coil::preload::main_exited()) coil::preload::after_main_exited();
  die("the scheduler stopped before main() returned", "");
}

}  // namespace

// __libc_start_main is glibc's, interposed: the program's main() is kept and the stand-in given
// to the real one in its place.
extern "C" __attribute__((visibility("default"))) int __libc_start_main(MainFn main, int argc,
                                                                        char** argv, void (*init)(),
                                                                        void (*fini)(),
                                                                        void (*rtld_fini)(),
                                                                        void* stack_end) {
  auto real = reinterpret_cast<StartFn>(dlsym(RTLD_NEXT, "__libc_start_main"));
  if (!real) {
    std::fprintf(stderr, "coil: __libc_start_main not found: %s\n", dlerror());
    std::abort();
  }
  program_main = main;
  return real(stand_in_main, argc, argv, init, fini, rtld_fini, stack_end);
}
