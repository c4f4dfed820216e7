// The verdict, the hints and the text report.
#include "report.hpp"

#include <algorithm>
#include <cerrno>

namespace coil_stress {

namespace {

constexpr double kQuantiles[] = {0.5, 0.9, 0.99, 0.999};
constexpr const char* kQuantileNames[] = {"p50", "p90", "p99", "p99.9"};

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

void add_once(std::vector<std::string>& list, std::string text) {
  if (std::find(list.begin(), list.end(), text) == list.end()) list.push_back(std::move(text));
}

// print_latency() prints one histogram's percentiles in milliseconds.
void print_latency(std::FILE* out, const char* what, const LatencyHistogram& h) {
  if (h.count() == 0) {
    std::fprintf(out, "%-22s no samples\n", what);
    return;
  }
  std::fprintf(out, "%-22s", what);
  for (std::size_t i = 0; i < std::size(kQuantiles); ++i)
    std::fprintf(out, " %s %.3f", kQuantileNames[i],
                 static_cast<double>(h.percentile(kQuantiles[i])) / 1000);
  std::fprintf(out, "  max %.3f ms  (%llu samples)\n", static_cast<double>(h.max()) / 1000,
               static_cast<unsigned long long>(h.count()));
}

}  // namespace

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return buf;
}

std::vector<std::string> limit_hints(const Stats& stats) {
  std::vector<std::string> hints;
  for (const auto& [key, n] : stats.errors) {
    auto [phase, err] = key;
    switch (err) {
      case EMFILE:
        add_once(hints,
                 "EMFILE: a process reached RLIMIT_NOFILE (ulimit -n); raise its hard limit "
                 "(limits.conf, systemd LimitNOFILE) or spread the connections over more --procs");
        break;
      case ENFILE:
        add_once(hints,
                 "ENFILE: the system-wide limit of open files is reached; raise fs.file-max "
                 "(sysctl -w fs.file-max=N)");
        break;
      case EADDRNOTAVAIL:
        if (phase == Phase::kBind) {
          add_once(hints,
                   "EADDRNOTAVAIL on bind: a --src address is not assigned to this host; use "
                   "addresses that `ip addr` lists (all of 127.0.0.0/8 works on loopback)");
          break;
        }
        add_once(hints,
                 "EADDRNOTAVAIL: the ephemeral ports ran out; widen "
                 "net.ipv4.ip_local_port_range, or use more source addresses with --src (on "
                 "loopback, e.g. --src 127.0.0.1-127.0.0.254) or more server --ports");
        break;
      case ENOBUFS:
      case ENOMEM:
        add_once(hints,
                 "ENOBUFS/ENOMEM: the kernel or the process is short of memory for sockets or "
                 "coroutine stacks; raise net.ipv4.tcp_mem (pages), check vm.max_map_count, or "
                 "add memory");
        break;
      case ECONNREFUSED:
      case ETIMEDOUT:
        if (phase == Phase::kConnect)
          add_once(hints,
                   "ECONNREFUSED/ETIMEDOUT on connect: nothing listens there, or the server's "
                   "listen backlog overflowed under load; check the server, raise "
                   "net.core.somaxconn and net.ipv4.tcp_max_syn_backlog (and the server's "
                   "listen() backlog), or lower --rate");
        if (phase == Phase::kDial)
          add_once(hints,
                   "the connect phase ended before every connection was attempted; raise "
                   "--connect-timeout or --rate");
        if (phase == Phase::kRecv || phase == Phase::kSend)
          add_once(hints,
                   "echoes timed out: the server is overloaded, stalled or out of descriptors "
                   "(its RLIMIT_NOFILE); check it, raise --echo-timeout or lower the load");
        break;
      default:
        break;
    }
  }
  return hints;
}

Summary summarize(const Options& opts, const RunResult& run) {
  Summary s;
  s.opts = &opts;
  s.run = &run;
  const Stats& t = run.total;
  s.connect_seconds = static_cast<double>(t.connect_phase_ns) / 1e9;
  s.connect_rate =
      s.connect_seconds > 0 ? static_cast<double>(t.established) / s.connect_seconds : 0;
  s.steady_seconds = static_cast<double>(t.steady_ns) / 1e9;
  s.echo_rate = s.steady_seconds > 0 ? static_cast<double>(t.steady_echoed) / s.steady_seconds : 0;
  s.hints = limit_hints(t);

  s.problems = run.failures;
  if (run.interrupted) s.problems.push_back("the run was interrupted");
  if (t.established < opts.connections)
    s.problems.push_back(std::to_string(opts.connections - t.established) + " of " +
                         plural(opts.connections, "connection was", "connections were") +
                         " not established");
  if (std::uint64_t failed = t.error_count(); failed > 0)
    s.problems.push_back(plural(failed, "connection", "connections") + " failed (see errors)");
  if (t.lost > 0) s.problems.push_back(plural(t.lost, "echo was", "echoes were") + " lost");
  if (t.corrupt > 0)
    s.problems.push_back(plural(t.corrupt, "echo was", "echoes were") + " corrupt");
  if (t.sent != t.echoed + t.lost)
    s.problems.push_back(std::to_string(t.sent) + " messages sent but " + std::to_string(t.echoed) +
                         " echoed and " + std::to_string(t.lost) + " lost");
  if (opts.verify && t.verified != t.echoed)
    s.problems.push_back(std::to_string(t.echoed - std::min(t.echoed, t.verified)) +
                         " echoes were not verified");
  return s;
}

void print_report(std::FILE* out, const Summary& s) {
  const Options& o = *s.opts;
  const Stats& t = s.run->total;
  char pace[48] = "back to back";
  if (o.interval > 0) std::snprintf(pace, sizeof pace, "every %g s", o.interval);
  std::string over = plural(static_cast<std::uint64_t>(o.procs), "process", "processes");
  if (o.threads > 1) over += " of " + std::to_string(o.threads) + " worker threads each";
  std::fprintf(out, "\ncoil-stress: %s ports %s, %llu connections over %s, %u-byte messages %s%s\n",
               o.host.c_str(), o.ports.c_str(), static_cast<unsigned long long>(o.connections),
               over.c_str(), o.message_size, pace, o.verify ? ", verified" : "");
  std::fprintf(out,
               "connections:           %llu requested, %llu attempted, %llu established in "
               "%.2f s (%.0f per second), peak %llu open\n",
               static_cast<unsigned long long>(o.connections),
               static_cast<unsigned long long>(t.attempted),
               static_cast<unsigned long long>(t.established), s.connect_seconds, s.connect_rate,
               static_cast<unsigned long long>(t.peak_open));
  print_latency(out, "connect latency (ms):", t.connect_us);
  std::fprintf(out,
               "messages:              %llu sent, %llu echoed, %llu verified, %llu lost, %llu "
               "corrupt; %.0f echoes/s over the %.1f s steady window\n",
               static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.echoed),
               static_cast<unsigned long long>(t.verified), static_cast<unsigned long long>(t.lost),
               static_cast<unsigned long long>(t.corrupt), s.echo_rate, s.steady_seconds);
  print_latency(out, "echo round trip (ms):", t.rtt_us);
  if (t.errors.empty()) {
    std::fprintf(out, "errors:                none\n");
  } else {
    std::fprintf(out, "errors:                %llu connections\n",
                 static_cast<unsigned long long>(t.error_count()));
    for (const auto& [key, n] : t.errors)
      std::fprintf(out, "  %-14s %-14s %10llu  %s\n", phase_name(key.first),
                   error_name(key.second).c_str(), static_cast<unsigned long long>(n),
                   error_text(key.second).c_str());
  }
  std::uint64_t per_conn = t.established > 0 ? t.rss_bytes / t.established : 0;
  std::fprintf(out,
               "client memory:         RSS %s over %s (%s per established connection), "
               "peak %s\n",
               format_bytes(t.rss_bytes).c_str(),
               plural(t.processes, "process", "processes").c_str(), format_bytes(per_conn).c_str(),
               format_bytes(t.hwm_bytes).c_str());
  std::fprintf(out,
               "kernel TCP memory:     %s (/proc/net/sockstat TCP mem), %llu TCP sockets in use "
               "(system-wide, both ends of loopback connections)\n",
               format_bytes(t.tcp_mem_bytes).c_str(), static_cast<unsigned long long>(t.tcp_inuse));
  for (const std::string& hint : s.hints) std::fprintf(out, "hint: %s\n", hint.c_str());
  if (s.ok()) {
    std::fprintf(out, "result: PASS in %.1f s\n", s.run->wall_seconds);
  } else {
    std::fprintf(out, "result: FAIL in %.1f s\n", s.run->wall_seconds);
    for (const std::string& p : s.problems) std::fprintf(out, "  %s\n", p.c_str());
  }
  std::fflush(out);
}

}  // namespace coil_stress
