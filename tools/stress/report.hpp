// The final report: the verdict, the figures, the errors and the hints, as text and as JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "options.hpp"
#include "processes.hpp"

namespace coil_stress {

// Summary is what both forms of the report say, worked out once from the run.
struct Summary {
  const Options* opts = nullptr;
  const RunResult* run = nullptr;
  double connect_seconds = 0;         // the longest connect phase of a process
  double connect_rate = 0;            // established connections per second of connect phase
  double steady_seconds = 0;          // the steady window
  double echo_rate = 0;               // echoes per second in the steady window
  std::vector<std::string> problems;  // why the run failed; empty when it passed
  std::vector<std::string> hints;     // one per system limit the errors point at

  bool ok() const { return problems.empty(); }
};

// summarize() works out the rates, the verdict and the hints. The run passes only if every
// connection was established and every message's echo came back (verified, with --verify).
Summary summarize(const Options& opts, const RunResult& run);

// limit_hints() names, once each, the limit behind the errors in stats: RLIMIT_NOFILE or
// fs.file-max for EMFILE/ENFILE, the ephemeral port range or --src for EADDRNOTAVAIL,
// net.ipv4.tcp_mem for ENOBUFS/ENOMEM, the listen backlog for ECONNREFUSED/ETIMEDOUT on connect.
std::vector<std::string> limit_hints(const Stats& stats);

// print_report() writes the human-readable report.
void print_report(std::FILE* out, const Summary& summary);

// write_json_report() writes the report as JSON to path; false with why on failure.
bool write_json_report(const std::string& path, const Summary& summary, std::string& why);

// format_bytes() is "12.3 MiB" and the like.
std::string format_bytes(std::uint64_t bytes);

}  // namespace coil_stress
