// Worker processes: the multi-process server of the seeds (fork N copies of
// the server, each with its own scheduler, all accepting on one port with
// SO_REUSEPORT), for when one process cannot hold everything, such as the
// connections RLIMIT_NOFILE caps per process.
#pragma once

#include <functional>

namespace coil {

// fork_workers() forks n child processes, runs child(i) in the i-th
// (0 <= i < n) and exits it with the int child returned (1 after an
// exception, whose what() goes to stderr). The parent forwards SIGINT and
// SIGTERM to every child, waits for all of them and returns 0 if all exited
// with 0, else the first non-zero status (128 + the signal for a child that
// a signal killed). If a fork fails, the children already started get
// SIGTERM and it throws std::system_error. Call it before any scheduler or
// Runtime exists in the parent (a child starts with the forking thread only).
// Precondition: n >= 1.
int fork_workers(int n, const std::function<int(int index)>& child);

}  // namespace coil
