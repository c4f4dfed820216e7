// SIGINT and SIGTERM end a run early: the processes stop dialing, close and still report.
#pragma once

namespace coil_stress {

// install_stop_handlers() makes SIGINT and SIGTERM set a flag (with SA_RESTART, so calls that
// wait go on waiting) and ignores SIGPIPE. Call it in each process.
void install_stop_handlers();

// stop_requests() is how many SIGINT/SIGTERM the process has had.
int stop_requests();

// stop_requested() is stop_requests() > 0.
inline bool stop_requested() { return stop_requests() > 0; }

}  // namespace coil_stress
