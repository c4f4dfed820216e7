// Green threads: under coil-run, pthread_create() makes a coroutine, and the pthread calls a
// program makes about it and its sync objects are emulated on coil's scheduler, so that waiting
// parks the coroutine instead of blocking the OS thread.
//
// Who is green: code running in a coroutine of a coil scheduler once green mode is on, unless it
// is coil's own code inside a detail::InternalScope (runtime/src/running.hpp). Everything else
// (threads coil made for itself, such as the blocking pool's, code before main(), and every
// thread under --native-threads) passes each pthread call through to glibc unchanged.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <vector>

namespace coil::detail {
class SchedulerImpl;
}

namespace coil::preload {

// enable_green_mode() turns green threads on; the start-up calls it, before main() starts, unless
// --native-threads was given.
void enable_green_mode() noexcept;

// green_mode() is true once enable_green_mode() ran.
bool green_mode() noexcept;

// in_green_thread() is true when the caller is a green thread: green_mode(), in a coroutine,
// and not inside an InternalScope. The pthread hooks emulate only for green threads.
bool in_green_thread() noexcept;

// set_workers() records the schedulers green threads are placed on, main()'s first; called at
// start-up, before main() runs (start.cpp), and in a fork()ed child, which has only the forking
// thread's. pick_worker() is the next one, round robin, for a new green thread.
void set_workers(std::vector<detail::SchedulerImpl*> workers);
detail::SchedulerImpl& pick_worker() noexcept;

// several_workers() is true if the process started with more than one worker (and stays true
// in a fork()ed child): the main scheduler then never runs dry, and the end of the process after
// main()'s pthread_exit() is found by counting green threads instead.
bool several_workers() noexcept;

// green_id() is the running green thread's id, > 0 and unique for the process's life: what a
// mutex records as its owner (where glibc records the owner's tid). 0 outside green threads.
std::uint32_t green_id() noexcept;

}  // namespace coil::preload
