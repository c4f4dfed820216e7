// Stats: what one client process counts and measures, merged over processes by the parent.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "histogram.hpp"

namespace coil_stress {

// Phase is where in a connection's life an error happened.
enum class Phase : std::uint8_t {
  kDial,     // never attempted: the connect phase ended (or the run was interrupted) first
  kSpawn,    // no coroutine for the connection (no memory for its stack)
  kSocket,   // socket()
  kBind,     // bind() to the --src address
  kConnect,  // connect()
  kSend,     // writing a message
  kRecv,     // reading its echo
};

// phase_name() is the lowercase name of a phase, for reports.
const char* phase_name(Phase phase);

// kErrEof is the error code of an echo cut short by end-of-file (the server closed).
inline constexpr int kErrEof = -1;
// kErrCorrupt is the error code of an echo whose bytes differ from what was sent (--verify).
inline constexpr int kErrCorrupt = -2;

// error_name() is "ECONNREFUSED" for an errno (strerrorname_np), or "EOF", "corrupt".
std::string error_name(int err);
// error_text() is strerror() for an errno, or a sentence for kErrEof and kErrCorrupt.
std::string error_text(int err);

// Stats are one process's counters, or their sum over processes. Connections fail at most once:
// the first error ends a connection, so errors count connections, not retries.
struct Stats {
  // Connections.
  std::uint64_t requested = 0;    // this process's share of --connections
  std::uint64_t attempted = 0;    // started (a coroutine went to open them)
  std::uint64_t established = 0;  // connect() succeeded
  std::uint64_t open = 0;         // established and not closed yet
  std::uint64_t peak_open = 0;    // the most open at once (summed over processes: an upper bound)
  // Messages.
  std::uint64_t sent = 0;           // messages written in full
  std::uint64_t echoed = 0;         // echoes read back in full
  std::uint64_t verified = 0;       // echoes whose every byte matched (--verify)
  std::uint64_t corrupt = 0;        // echoes that did not match (--verify)
  std::uint64_t lost = 0;           // messages sent whose echo never came back in full
  std::uint64_t steady_echoed = 0;  // echoes read during the steady window (after the connects)
  // Times, in nanoseconds; over processes the longest.
  std::uint64_t connect_phase_ns = 0;  // from start until every connect of the share had ended
  std::uint64_t steady_ns = 0;         // the steady window as it ran
  // Memory, sampled with every connection open (before closing); over processes RSS is summed
  // and the kernel's figures (system-wide) take the largest sample.
  std::uint64_t rss_bytes = 0;      // VmRSS
  std::uint64_t hwm_bytes = 0;      // VmHWM, the peak RSS
  std::uint64_t tcp_mem_bytes = 0;  // /proc/net/sockstat TCP "mem" (pages) times the page size
  std::uint64_t tcp_inuse = 0;      // /proc/net/sockstat TCP "inuse"
  std::uint64_t processes = 1;      // processes these stats cover
  bool finished = false;            // the process reached the end of its run (not a snapshot)
  bool interrupted = false;         // SIGINT/SIGTERM cut the run short

  std::map<std::pair<Phase, int>, std::uint64_t> errors;  // (phase, errno) -> connections
  LatencyHistogram connect_us;  // connect() duration of each established connection
  LatencyHistogram rtt_us;      // write-to-full-echo time of each message

  // error_count() is the number of failed or never attempted connections.
  std::uint64_t error_count() const;

  // add_error() counts one connection ended by err in phase.
  void add_error(Phase phase, int err, std::uint64_t n = 1) { errors[{phase, err}] += n; }

  // merge() folds another process's stats into these.
  void merge(const Stats& other);

  // encode() appends the stats to out; decode() reads them from data (all of it).
  void encode(std::vector<unsigned char>& out) const;
  bool decode(const std::vector<unsigned char>& data);
};

}  // namespace coil_stress
