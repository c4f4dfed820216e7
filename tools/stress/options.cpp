// coil-stress options: CLI11 flags, the checks CLI11 cannot express, and the process plan.
#include "options.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace coil_stress {

namespace {

constexpr std::uint64_t kMaxConnections = 100'000'000;
constexpr int kMaxProcs = 4096;
constexpr std::uint32_t kMaxMessageSize = 1u << 20;

// parse_port_range() reads "A-B" (or "A") into first/last; false if malformed or outside 1..65535.
bool parse_port_range(const std::string& text, std::uint16_t& first, std::uint16_t& last) {
  unsigned a = 0;
  unsigned b = 0;
  int used = 0;
  int fields = std::sscanf(text.c_str(), "%5u%n-%5u%n", &a, &used, &b, &used);
  if (fields < 1 || used != static_cast<int>(text.size())) return false;
  if (fields == 1) b = a;
  if (a < 1 || b > 65535 || a > b) return false;
  first = static_cast<std::uint16_t>(a);
  last = static_cast<std::uint16_t>(b);
  return true;
}

// parse_ipv4() reads a dotted IPv4 address into host byte order.
bool parse_ipv4(const std::string& text, std::uint32_t& addr) {
  in_addr in{};
  if (inet_pton(AF_INET, text.c_str(), &in) != 1) return false;
  addr = ntohl(in.s_addr);
  return true;
}

// parse_ipv4_range() reads "A.B.C.D-E.F.G.H" (or one address) into first/last, first <= last.
bool parse_ipv4_range(const std::string& text, std::uint32_t& first, std::uint32_t& last) {
  std::size_t dash = text.find('-');
  if (!parse_ipv4(text.substr(0, dash), first)) return false;
  if (dash == std::string::npos) {
    last = first;
    return true;
  }
  return parse_ipv4(text.substr(dash + 1), last) && first <= last;
}

std::string port_range_check(const std::string& text) {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  return parse_port_range(text, first, last)
             ? std::string()
             : "expected FIRST-LAST ports within 1-65535, got '" + text + "'";
}

std::string src_range_check(const std::string& text) {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  return parse_ipv4_range(text, first, last)
             ? std::string()
             : "expected FIRST-LAST IPv4 addresses in ascending order, got '" + text + "'";
}

// resolve_host() turns a dotted address or a name into an IPv4 address (host order).
bool resolve_host(const std::string& host, std::uint32_t& addr, std::string& why) {
  if (parse_ipv4(host, addr)) return true;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    why = rc != 0 ? gai_strerror(rc) : "no IPv4 address";
    return false;
  }
  addr = ntohl(reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr.s_addr);
  freeaddrinfo(found);
  return true;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "coil-stress: %s\nRun with --help for more information.\n", message.c_str());
  return 2;
}

}  // namespace

double default_connect_timeout(const Options& opts) {
  double n = static_cast<double>(opts.connections);
  return 30 + (opts.rate > 0 ? n / opts.rate : n / 10'000);
}

int parse_options(int argc, char** argv, Options& opts) {
  CLI::App app{
      "coil-stress: opens many TCP connections to an echo server (such as c1m_server), sends a "
      "message on each every --interval seconds and reports connect latency, echo round trips, "
      "errors and memory. One coroutine per connection, over one or more processes."};
  app.add_option("host", opts.host, "The echo server: an IPv4 address or a name")->required();
  app.add_option("--ports", opts.ports, "The server's ports, FIRST-LAST; used round-robin")
      ->check(port_range_check)
      ->capture_default_str();
  app.add_option("--connections,-c", opts.connections, "Connections to open, over all processes")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, kMaxConnections));
  app.add_option("--src", opts.src,
                 "Source IPv4 addresses FIRST-LAST; each socket is bound to the next one "
                 "(IP_BIND_ADDRESS_NO_PORT). Default: the kernel picks")
      ->check(src_range_check);
  app.add_option("--rate", opts.rate,
                 "New connections per second over all processes (a token bucket, each process "
                 "takes its share); 0: no limit, only --max-pending connects in flight")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--duration", opts.duration,
                 "Seconds of echoes after the connect phase ends, then everything is closed")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--message-size", opts.message_size, "Bytes per message")
      ->check(CLI::Range(std::uint32_t{1}, kMaxMessageSize))
      ->capture_default_str();
  app.add_option("--interval", opts.interval,
                 "Seconds between a connection's messages; 0: back-to-back ping-pong")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_flag("--verify", opts.verify,
               "Check every echoed byte against a pattern unique to the connection and message");
  app.add_option("--procs", opts.procs,
                 "Client processes sharing the connections. Default: as many as RLIMIT_NOFILE "
                 "needs")
      ->check(CLI::Range(1, kMaxProcs));
  app.add_option("--threads", opts.threads,
                 "Worker threads per process (a coil::Runtime), each a client with its share")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--json", opts.json, "Also write the report as JSON to this file");
  app.add_option("--connect-timeout", opts.connect_timeout,
                 "Seconds the connect phase may last; connections not up by then fail. "
                 "Default: 30 + connections/rate, or 30 + connections/10000 without --rate")
      ->check(CLI::Range(0.001, 1e6));
  app.add_option("--echo-timeout", opts.echo_timeout,
                 "Seconds an echo may take before it counts as lost")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  app.add_option("--max-pending", opts.max_pending, "Connects in flight at once per process")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{1'000'000}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }

  if (static_cast<std::uint64_t>(opts.threads) > opts.connections)
    return usage_error("--threads " + std::to_string(opts.threads) +
                       " is more than --connections " + std::to_string(opts.connections));
  if (opts.procs > 0 && static_cast<std::uint64_t>(opts.procs) > opts.connections)
    return usage_error("--procs " + std::to_string(opts.procs) + " is more than --connections " +
                       std::to_string(opts.connections));
  parse_port_range(opts.ports, opts.first_port, opts.last_port);
  if (!opts.src.empty()) parse_ipv4_range(opts.src, opts.src_first, opts.src_last);
  std::string why;
  if (!resolve_host(opts.host, opts.host_addr, why))
    return usage_error("cannot resolve '" + opts.host + "' to an IPv4 address: " + why);
  if (opts.connect_timeout == 0) opts.connect_timeout = default_connect_timeout(opts);
  return -1;
}

int plan_processes(Options& opts, ProcessPlan& plan) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    std::fprintf(stderr, "coil-stress: getrlimit(RLIMIT_NOFILE): %s\n", std::strerror(errno));
    return 1;
  }
  if (lim.rlim_cur < lim.rlim_max) {
    rlim_t old = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      std::fprintf(stderr,
                   "coil-stress: note: could not raise RLIMIT_NOFILE from %llu to %llu: %s\n",
                   static_cast<unsigned long long>(old),
                   static_cast<unsigned long long>(lim.rlim_max), std::strerror(errno));
      lim.rlim_cur = old;
    }
  }
  plan.fd_limit = lim.rlim_cur == RLIM_INFINITY ? kMaxConnections : lim.rlim_cur;
  plan.per_process = plan.fd_limit > kFdMargin ? plan.fd_limit - kFdMargin : 0;
  if (plan.per_process == 0) {
    std::fprintf(stderr,
                 "coil-stress: RLIMIT_NOFILE is %llu, which leaves no descriptors for "
                 "connections after the %llu a process keeps for itself; raise it (ulimit -n)\n",
                 static_cast<unsigned long long>(plan.fd_limit),
                 static_cast<unsigned long long>(kFdMargin));
    return 2;
  }
  std::uint64_t needed = (opts.connections + plan.per_process - 1) / plan.per_process;
  if (opts.procs == 0) {
    if (needed > static_cast<std::uint64_t>(kMaxProcs)) {
      std::fprintf(stderr,
                   "coil-stress: %llu connections need %llu processes under RLIMIT_NOFILE %llu, "
                   "more than the %d allowed; raise RLIMIT_NOFILE\n",
                   static_cast<unsigned long long>(opts.connections),
                   static_cast<unsigned long long>(needed),
                   static_cast<unsigned long long>(plan.fd_limit), kMaxProcs);
      return 2;
    }
    opts.procs = static_cast<int>(needed);
    std::printf(
        "coil-stress: %d process%s: RLIMIT_NOFILE is %llu, so one process holds at most "
        "%llu connections (%llu descriptors kept back)\n",
        opts.procs, opts.procs == 1 ? "" : "es", static_cast<unsigned long long>(plan.fd_limit),
        static_cast<unsigned long long>(plan.per_process),
        static_cast<unsigned long long>(kFdMargin));
    std::fflush(stdout);
  } else if (static_cast<std::uint64_t>(opts.procs) < needed) {
    std::uint64_t each = (opts.connections + static_cast<std::uint64_t>(opts.procs) - 1) /
                         static_cast<std::uint64_t>(opts.procs);
    std::fprintf(stderr,
                 "coil-stress: --procs %d gives a process up to %llu connections, but "
                 "RLIMIT_NOFILE (%llu) caps a process at %llu connections "
                 "(%llu descriptors kept back); use --procs %llu or more, or raise the "
                 "RLIMIT_NOFILE hard limit\n",
                 opts.procs, static_cast<unsigned long long>(each),
                 static_cast<unsigned long long>(plan.fd_limit),
                 static_cast<unsigned long long>(plan.per_process),
                 static_cast<unsigned long long>(kFdMargin),
                 static_cast<unsigned long long>(needed));
    return 2;
  }
  plan.procs = opts.procs;
  return -1;
}

Share share_of(const Options& opts, int client) {
  auto clients = static_cast<std::uint64_t>(opts.procs) * static_cast<std::uint64_t>(opts.threads);
  auto c = static_cast<std::uint64_t>(client);
  std::uint64_t base = opts.connections / clients;
  std::uint64_t extra = opts.connections % clients;
  Share share;
  share.process = client;
  share.thread = client % opts.threads;
  share.count = base + (c < extra ? 1 : 0);
  share.first = c * base + std::min(c, extra);
  return share;
}

}  // namespace coil_stress
