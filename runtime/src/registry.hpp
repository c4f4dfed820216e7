// The process's list of schedulers: what coil::process_stats() adds up and
// what tools/coil-gdb.py walks to list coroutines (keep the names it reads:
// scheduler_registry.head, SchedulerImpl::registry_next; the members it reads
// beyond are marked "coil-gdb" where they are declared).
#pragma once

#include <cstdint>

#include "coil/detail/spin_lock.hpp"
#include "coil/scheduler.hpp"

namespace coil::detail {

class SchedulerImpl;

struct SchedulerRegistry {
  SpinLock lock;
  SchedulerImpl* head = nullptr;  // the live schedulers, newest first
  std::uint64_t created = 0;
  SchedulerStats retired;  // the counters of the destroyed ones, added up
};

// scheduler_registry is never destroyed: a scheduler may be destroyed
// during static destruction, after any other global.
extern SchedulerRegistry scheduler_registry;

// register_scheduler() adds s. The first call reads COIL_STATS and throws
// std::invalid_argument if it is malformed (and again on every later call).
void register_scheduler(SchedulerImpl* s);
// retire_scheduler() removes s, keeping its counters in the totals.
void retire_scheduler(SchedulerImpl* s) noexcept;
// registry_after_fork() runs in a fork()ed child. It keeps survivor (the
// forking thread's running scheduler, or none) and the schedulers no thread
// was running, and drops those other threads were running: the child does
// not have those threads. Counting restarts at the fork.
void registry_after_fork(SchedulerImpl* survivor) noexcept;

}  // namespace coil::detail
