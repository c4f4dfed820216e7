// Process-wide runtime statistics: the counters of every scheduler in the
// process, added up.
//
//   coil::ProcessStats s = coil::process_stats();
//   std::fputs(coil::format_stats(s).c_str(), stderr);
//
// With COIL_STATS=1 in the environment, coil prints format_stats() to stderr
// when the process exits (through exit() or a return from main; not _exit()
// or a fatal signal). COIL_STATS=0, or unset, prints nothing; another value
// makes every Scheduler's constructor throw std::invalid_argument.
#pragma once

#include <cstdint>
#include <string>

#include "coil/scheduler.hpp"

namespace coil {

// ProcessStats are SchedulerStats summed over every scheduler this process
// has created, the destroyed ones included. live_coroutines and
// stacks_in_use count the schedulers still alive; peak_coroutines is the sum
// of each scheduler's own peak, so it may exceed the most that were ever
// alive at once.
struct ProcessStats : SchedulerStats {
  std::uint64_t schedulers = 0;       // created so far (in a fork()ed child: since the fork)
  std::uint64_t live_schedulers = 0;  // not yet destroyed
};

// process_stats() reads every scheduler's counters. Thread-safe: another
// thread's counters are read as they stand, a moment out of date.
ProcessStats process_stats() noexcept;

// format_stats() renders s as the few lines COIL_STATS prints, naming the
// process id.
std::string format_stats(const ProcessStats& s);

}  // namespace coil
