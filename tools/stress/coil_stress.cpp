// coil-stress: the million-connection stress client, one coroutine per connection.
//
// It opens --connections TCP connections to an echo server (examples/c1m_server) spread
// round-robin over --ports, from --src source addresses, at --rate per second; each connection
// sends --message-size bytes every --interval seconds and times the echo. After the connect phase
// it echoes for --duration seconds, closes everything and reports connect latency and round-trip
// percentiles, errors by kind with the system limit behind them, client RSS and the kernel's
// socket memory. RLIMIT_NOFILE caps a process, so the connections are split over --procs
// processes (by default as many as needed), each with its own coil scheduler; the parent shows
// their merged progress and report. Exit status: 0 when every connection was established and
// every echo came back (and matched, with --verify); 1 otherwise; 2 for a bad command line.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "options.hpp"
#include "processes.hpp"
#include "report.hpp"
#include "stop_signal.hpp"
#include "system_info.hpp"

namespace {

using namespace coil_stress;

// warn_about_port_space() says up front when the connections cannot all get a four-tuple: each
// (source address, server port) pair has the ephemeral port range to itself.
void warn_about_port_space(const Options& opts) {
  std::uint64_t ports = ephemeral_port_count();
  std::uint64_t pairs = std::uint64_t{opts.src_count()} * opts.port_count();
  if (ports == 0 || opts.connections <= pairs * ports) return;
  std::fprintf(stderr,
               "coil-stress: warning: %llu connections over %llu (source address, server port) "
               "pairs exceed the %llu ephemeral ports of each pair "
               "(net.ipv4.ip_local_port_range); expect EADDRNOTAVAIL; give more --src addresses "
               "or --ports\n",
               static_cast<unsigned long long>(opts.connections),
               static_cast<unsigned long long>(pairs), static_cast<unsigned long long>(ports));
}

// json_writable() checks before the run that --json FILE can be written.
bool json_writable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) {
    std::fprintf(stderr, "coil-stress: cannot write --json %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return false;
  }
  std::fclose(f);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (int status = parse_options(argc, argv, opts); status >= 0) return status;
  if (!opts.json.empty() && !json_writable(opts.json)) return 2;
  ProcessPlan plan;
  if (int status = plan_processes(opts, plan); status >= 0) return status;
  warn_about_port_space(opts);
  install_stop_handlers();

  RunResult run = run_processes(opts);
  Summary summary = summarize(opts, run);
  print_report(stdout, summary);
  if (!opts.json.empty()) {
    std::string why;
    if (!write_json_report(opts.json, summary, why)) {
      std::fprintf(stderr, "coil-stress: could not write --json %s: %s\n", opts.json.c_str(),
                   why.c_str());
      return 1;
    }
  }
  return summary.ok() ? 0 : 1;
}
