// real::NAME is glibc's NAME for the pthread and semaphore calls the green-thread hooks interpose
// (the same once-looked-up cache as the hook layer's, hook/src/real.hpp).
#pragma once

#include <pthread.h>
#include <semaphore.h>

#include "real.hpp"

namespace coil::preload::real {

using hook::Real;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#define COIL_REAL_PTHREAD(name) inline constinit Real<decltype(&::name)> name{#name};
COIL_REAL_PTHREAD(pthread_create)
COIL_REAL_PTHREAD(pthread_join)
COIL_REAL_PTHREAD(pthread_tryjoin_np)
COIL_REAL_PTHREAD(pthread_timedjoin_np)
COIL_REAL_PTHREAD(pthread_detach)
COIL_REAL_PTHREAD(pthread_exit)
COIL_REAL_PTHREAD(pthread_self)
COIL_REAL_PTHREAD(pthread_once)
COIL_REAL_PTHREAD(pthread_getattr_np)
COIL_REAL_PTHREAD(pthread_setname_np)
COIL_REAL_PTHREAD(pthread_getname_np)
COIL_REAL_PTHREAD(pthread_kill)
COIL_REAL_PTHREAD(pthread_cancel)
COIL_REAL_PTHREAD(pthread_key_create)
COIL_REAL_PTHREAD(pthread_key_delete)
COIL_REAL_PTHREAD(pthread_getspecific)
COIL_REAL_PTHREAD(pthread_setspecific)
COIL_REAL_PTHREAD(pthread_mutex_init)
COIL_REAL_PTHREAD(pthread_mutex_lock)
COIL_REAL_PTHREAD(pthread_mutex_trylock)
COIL_REAL_PTHREAD(pthread_mutex_timedlock)
COIL_REAL_PTHREAD(pthread_mutex_clocklock)
COIL_REAL_PTHREAD(pthread_mutex_unlock)
COIL_REAL_PTHREAD(pthread_cond_wait)
COIL_REAL_PTHREAD(pthread_cond_timedwait)
COIL_REAL_PTHREAD(pthread_cond_clockwait)
COIL_REAL_PTHREAD(pthread_cond_signal)
COIL_REAL_PTHREAD(pthread_cond_broadcast)
COIL_REAL_PTHREAD(pthread_rwlock_rdlock)
COIL_REAL_PTHREAD(pthread_rwlock_tryrdlock)
COIL_REAL_PTHREAD(pthread_rwlock_timedrdlock)
COIL_REAL_PTHREAD(pthread_rwlock_clockrdlock)
COIL_REAL_PTHREAD(pthread_rwlock_wrlock)
COIL_REAL_PTHREAD(pthread_rwlock_trywrlock)
COIL_REAL_PTHREAD(pthread_rwlock_timedwrlock)
COIL_REAL_PTHREAD(pthread_rwlock_clockwrlock)
COIL_REAL_PTHREAD(pthread_rwlock_unlock)
COIL_REAL_PTHREAD(pthread_spin_lock)
COIL_REAL_PTHREAD(pthread_spin_trylock)
COIL_REAL_PTHREAD(pthread_spin_unlock)
COIL_REAL_PTHREAD(pthread_barrier_init)
COIL_REAL_PTHREAD(pthread_barrier_destroy)
COIL_REAL_PTHREAD(pthread_barrier_wait)
COIL_REAL_PTHREAD(sem_init)
COIL_REAL_PTHREAD(sem_destroy)
COIL_REAL_PTHREAD(sem_wait)
COIL_REAL_PTHREAD(sem_trywait)
COIL_REAL_PTHREAD(sem_timedwait)
COIL_REAL_PTHREAD(sem_clockwait)
COIL_REAL_PTHREAD(sem_post)
#undef COIL_REAL_PTHREAD
#pragma GCC diagnostic pop

}  // namespace coil::preload::real
