// real::NAME is glibc's NAME for the pthread calls the green-thread hooks interpose (the same
// once-looked-up cache as the hook layer's, hook/src/real.hpp).
#pragma once

#include <pthread.h>

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
#undef COIL_REAL_PTHREAD
#pragma GCC diagnostic pop

}  // namespace coil::preload::real
