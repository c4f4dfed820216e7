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

namespace coil::preload {

// enable_green_mode() turns green threads on; the start-up calls it, before main() starts, unless
// --native-threads was given.
void enable_green_mode() noexcept;

// green_mode() is true once enable_green_mode() ran.
bool green_mode() noexcept;

// in_green_thread() is true when the caller is a green thread: green_mode(), in a coroutine,
// and not inside an InternalScope. The pthread hooks emulate only for green threads.
bool in_green_thread() noexcept;

// green_id() is the running green thread's id, > 0 and unique for the process's life: what a
// mutex records as its owner (where glibc records the owner's tid). 0 outside green threads.
std::uint32_t green_id() noexcept;

}  // namespace coil::preload
