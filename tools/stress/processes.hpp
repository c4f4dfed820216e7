// The parent's side: forking the client processes and gathering what they report.
#pragma once

#include <string>
#include <vector>

#include "options.hpp"
#include "stats.hpp"

namespace coil_stress {

// RunResult is the merged outcome of every client process.
struct RunResult {
  Stats total;                        // the final (or, for a process that died, last) stats
  std::vector<std::string> failures;  // process-level trouble: died, killed, bad report
  double wall_seconds = 0;
  bool interrupted = false;
};

// run_processes() forks opts.procs client processes, each running run_client() on its share,
// shows their merged progress on stdout and returns their merged results once all have ended.
// It is bounded in time: past the connect timeout, the duration, the echo timeout and a margin,
// or at a second SIGINT/SIGTERM, it kills the processes it started (by pid) and reports what it
// has. A first SIGINT/SIGTERM is passed on to them, and they stop early and report.
RunResult run_processes(const Options& opts);

}  // namespace coil_stress
