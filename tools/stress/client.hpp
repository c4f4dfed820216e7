// One client process: its share of the connections, each a coroutine, on one coil scheduler.
#pragma once

#include <vector>

#include "options.hpp"

namespace coil_stress {

// run_client() is a client process's whole run. On a coil scheduler it opens share's connections
// (one small-stack coroutine each, blocking-style calls that the hooks turn into epoll waits),
// paced by --rate and --max-pending; each established connection sends a message every
// --interval and reads its echo back. The steady window of --duration seconds starts when every
// connect of the share has ended (or the connect phase timed out); then every connection
// finishes its echo in flight and closes. Progress snapshots go to report_fd four times a second
// and the final Stats at the end (report_channel.hpp). Returns the process's exit status: 0 when
// the final report was sent, whatever the connections did (the parent judges those).
int run_client(const Options& opts, const Share& share, int report_fd);

// run_clients() is a process's run with --threads: one client per share, each on its own worker
// thread of a coil::Runtime, each reporting to its own fd. Returns 0 if every client did.
int run_clients(const Options& opts, const std::vector<Share>& shares,
                const std::vector<int>& report_fds);

}  // namespace coil_stress
