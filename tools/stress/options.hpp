// coil-stress options: the command line, checked, and the split of connections over processes.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

namespace coil_stress {

// Options is the checked command line. Addresses and ports are in host byte order.
struct Options {
  std::string host;                 // the server: an IPv4 address or a name
  std::uint32_t host_addr = 0;      // host, resolved
  std::string ports = "2048-2147";  // --ports FIRST-LAST
  std::uint16_t first_port = 0;
  std::uint16_t last_port = 0;
  std::uint64_t connections = 0;  // --connections, over all processes
  std::string src;                // --src FIRST-LAST; empty: the kernel picks the source
  std::uint32_t src_first = 0;
  std::uint32_t src_last = 0;
  double rate = 0;                   // new connections per second, all processes; 0: no limit
  double duration = 10;              // seconds of echoes after the connect phase
  std::uint32_t message_size = 64;   // bytes per message
  double interval = 1;               // seconds between a connection's messages; 0: back to back
  bool verify = false;               // check every echoed byte
  int procs = 0;                     // client processes; 0: as many as RLIMIT_NOFILE needs
  int threads = 1;                   // worker threads per process; only 1 so far
  std::string json;                  // --json FILE; empty: none
  double connect_timeout = 0;        // the connect phase's limit; 0: derived (see below)
  double echo_timeout = 5;           // seconds an echo may take before it counts as lost
  std::uint32_t max_pending = 1024;  // connects in flight per process

  std::uint32_t port_count() const { return last_port - first_port + 1u; }
  std::uint32_t src_count() const { return src.empty() ? 1u : src_last - src_first + 1u; }
};

// kFdMargin is how many descriptors a client process keeps for itself besides its connections:
// stdio, the scheduler's epoll and eventfd, the report pipe, /proc reads, the hook layer's pools.
inline constexpr std::uint64_t kFdMargin = 100;

// parse_options() fills opts from the command line. It returns -1 when the program should go on;
// otherwise the exit status (0 after --help, 2 after a bad value) once it has printed why.
int parse_options(int argc, char** argv, Options& opts);

// default_connect_timeout() is the connect phase's limit when --connect-timeout is not given:
// 30 s plus the time --rate needs for every connection, or plus 1 s per 10,000 connections
// without a rate.
double default_connect_timeout(const Options& opts);

// ProcessPlan says how many client processes share the connections and why.
struct ProcessPlan {
  int procs = 1;
  std::uint64_t fd_limit = 0;     // RLIMIT_NOFILE after raising the soft limit to the hard one
  std::uint64_t per_process = 0;  // the most connections one process can hold under fd_limit
};

// plan_processes() raises the RLIMIT_NOFILE soft limit to the hard one (children inherit it) and
// picks the number of processes: --procs if given and large enough, else the fewest that fit.
// It returns -1 when the program should go on; otherwise the exit status (2) once it has said
// which limit is in the way. opts.procs is set to the number chosen.
int plan_processes(Options& opts, ProcessPlan& plan);

// Share is the block of connection indices [first, first + count) one client opens: a worker
// thread of a process (with --threads) or the process itself.
struct Share {
  int process = 0;  // the client's index over all processes and their threads
  int thread = 0;   // its worker in its process; thread 0 also measures the process
  std::uint64_t first = 0;
  std::uint64_t count = 0;
};

// share_of() splits opts.connections into opts.procs * opts.threads contiguous blocks that differ
// by at most one; client = process * opts.threads + thread.
Share share_of(const Options& opts, int client);

}  // namespace coil_stress
