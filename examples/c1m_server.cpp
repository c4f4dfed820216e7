// c1m_server: the seeds' million-connection server: listens on a range of ports and echoes.
//
// It listens on every port of --ports (the seeds use the 100 ports 2048-2147, so that one
// client IP can open a million connections without running out of four-tuples), with one
// accepting coroutine per listening socket and one small-stack coroutine per connection that
// echoes what it reads, all written as blocking code. Like the seed it prints how many
// milliseconds each 1000 accepts took. It raises its RLIMIT_NOFILE soft limit to the hard limit
// at start; when accept() still runs out of descriptors it says which limit to raise and keeps
// serving the connections it has. On SIGINT, SIGTERM or after --max-seconds it closes everything
// and prints a summary: totals, the peak of open connections and errors by errno.
//
// --threads N runs N worker threads and --procs P forks P processes (the seeds' multi-core
// server); every worker of every process listens on every port with SO_REUSEPORT and the kernel
// spreads the connections over them. Processes are how to go past RLIMIT_NOFILE, which caps the
// descriptors of each; each process prints its own lines and summary.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/intrusive/list.hpp>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "coil/net.hpp"
#include "coil/process.hpp"
#include "coil/runtime.hpp"
#include "coil/scheduler.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace bi = boost::intrusive;

constexpr int kBacklog = 65535;  // the kernel caps it at net.core.somaxconn
constexpr std::size_t kConnStack = 32 * 1024;
constexpr std::size_t kEchoBuffer = 512;
constexpr auto kAcceptBackoff = 100ms;
constexpr std::uint64_t kReportEvery = 1000;

struct Options {
  std::string host = "127.0.0.1";
  std::string ports = "2048-2147";
  int first_port = 0;
  int last_port = 0;
  double max_seconds = 0;  // 0: until SIGINT or SIGTERM
  int threads = 1;         // worker threads, each with its own listeners (SO_REUSEPORT)
  int procs = 1;           // processes, each with its own threads and listeners
};

// Conn is one connection. It lives on its coroutine's stack and unlinks itself when it goes.
struct Conn : bi::list_base_hook<bi::link_mode<bi::auto_unlink>> {
  int fd = -1;
};

// Server is what the coroutines of one worker thread share (with --threads, each worker has its
// own, with its own listeners on every port).
struct Server {
  Options opts;
  std::vector<int> listeners;
  bi::list<Conn, bi::constant_time_size<false>> conns;  // so that stop() can reach them
  bool stopping = false;
  std::uint64_t accepted = 0;
  std::uint64_t open = 0;
  std::uint64_t peak_open = 0;
  std::uint64_t fd_shortages = 0;            // accept() failures for want of descriptors or memory
  bool short_of_fds = false;                 // reported once per shortage, not once per retry
  std::map<int, std::uint64_t> conn_errors;  // errno -> connections that ended with it
  Clock::time_point started = Clock::now();
  Clock::time_point batch_start;
};

// parse_range() reads "A-B" (or "A") into first/last; false if malformed or out of 1..65535.
bool parse_range(const std::string& text, int& first, int& last) {
  unsigned a = 0;
  unsigned b = 0;
  int used = 0;
  int fields = std::sscanf(text.c_str(), "%u%n-%u%n", &a, &used, &b, &used);
  if (fields < 1 || used != static_cast<int>(text.size())) return false;
  if (fields == 1) b = a;
  if (a < 1 || b > 65535 || a > b) return false;
  first = static_cast<int>(a);
  last = static_cast<int>(b);
  return true;
}

std::string range_check(const std::string& text) {
  int first = 0;
  int last = 0;
  return parse_range(text, first, last) ? std::string()
                                        : "expected FIRST-LAST within 1-65535, got " + text;
}

std::string ipv4_check(const std::string& text) {
  in_addr addr{};
  return inet_pton(AF_INET, text.c_str(), &addr) == 1 ? std::string()
                                                      : "not an IPv4 address: " + text;
}

// raise_fd_limit() lifts the RLIMIT_NOFILE soft limit to the hard one and says what it did.
std::string raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return "getrlimit: " + std::string(strerror(errno));
  if (lim.rlim_cur >= lim.rlim_max)
    return "RLIMIT_NOFILE (ulimit -n) is " + std::to_string(lim.rlim_cur) + ", its hard limit";
  rlim_t old = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
    return "could not raise RLIMIT_NOFILE (ulimit -n) from " + std::to_string(old) + ": " +
           strerror(errno);
  return "raised the RLIMIT_NOFILE soft limit (ulimit -n) from " + std::to_string(old) +
         " to the hard limit, " + std::to_string(lim.rlim_max);
}

// open_listener() returns a socket listening on host:port (shared with the other workers and
// processes through SO_REUSEPORT if reuse_port), or -1 after saying why.
int open_listener(const std::string& host, int port, bool reuse_port) {
  try {
    return coil::listen_tcp(host, port, {.backlog = kBacklog, .reuse_port = reuse_port});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "c1m_server: %s\n", e.what());
    return -1;
  }
}

// note_accepted() counts a new connection and prints the time per 1000 accepts, as the seed.
void note_accepted(Server& s) {
  ++s.accepted;
  s.peak_open = std::max(s.peak_open, ++s.open);
  if (s.short_of_fds) {
    std::fprintf(stderr, "c1m_server: accepting again (%" PRIu64 " open)\n", s.open);
    s.short_of_fds = false;
  }
  Clock::time_point now = Clock::now();
  if (s.accepted == 1) s.batch_start = now;
  if (s.accepted % kReportEvery != 0) return;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - s.batch_start).count();
  std::printf("accepted %" PRIu64 " connections, %lld ms per %" PRIu64 "\n", s.accepted,
              static_cast<long long>(ms), kReportEvery);
  std::fflush(stdout);
  s.batch_start = now;
}

// report_shortage() says, once per shortage, which limit accept() ran into.
void report_shortage(Server& s, int err) {
  ++s.fd_shortages;
  if (s.short_of_fds) return;
  s.short_of_fds = true;
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  const char* hint = err == EMFILE   ? "the process hit RLIMIT_NOFILE (ulimit -n); raise the hard "
                                       "limit (limits.conf, systemd LimitNOFILE)"
                     : err == ENFILE ? "the system-wide file limit (fs.file-max) is reached"
                                     : "the kernel is short of memory for sockets";
  std::fprintf(stderr,
               "c1m_server: accept: %s with %" PRIu64
               " connections open, RLIMIT_NOFILE %llu: %s; "
               "still serving them, retrying every 100 ms\n",
               strerror(err), s.open, static_cast<unsigned long long>(lim.rlim_cur), hint);
}

// echo() sends back what the client sends until it closes; returns 0 or the errno that ended it.
int echo(int fd) {
  char buf[kEchoBuffer];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(fd, buf + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno != EINTR) return errno;
      if (w > 0) done += w;
    }
  }
}

// serve_conn() is one connection's coroutine.
void serve_conn(Server& s, int fd) {
  Conn conn;
  conn.fd = fd;
  s.conns.push_back(conn);
  if (int err = echo(fd); err != 0 && !s.stopping) ++s.conn_errors[err];
  conn.unlink();
  if (close(fd) != 0) ++s.conn_errors[errno];
  --s.open;
}

// accept_on() accepts on one listening socket until stop(), then closes it.
void accept_on(Server& s, int listen_fd) {
  while (!s.stopping) {
    int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) {
      int err = errno;
      if (s.stopping || err == EINTR || err == ECONNABORTED) continue;
      if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        std::fprintf(stderr, "c1m_server: accept: %s; this port stops accepting\n", strerror(err));
        break;
      }
      report_shortage(s, err);
      coil::sleep_for(kAcceptBackoff);
      continue;
    }
    note_accepted(s);
    try {
      coil::go([&s, fd] { serve_conn(s, fd); },
               coil::SpawnOptions{.name = "conn", .stack_size = kConnStack});
    } catch (const coil::SpawnError& e) {
      std::fprintf(stderr, "c1m_server: no coroutine for a connection: %s\n", e.what());
      close(fd);
      --s.open;
      coil::sleep_for(kAcceptBackoff);
    }
  }
  close(listen_fd);
}

// stop() wakes every coroutine so that it finishes: shutdown() ends a blocked accept() with
// EINVAL and a blocked read() with end-of-file.
void stop(Server& s) {
  s.stopping = true;
  for (int fd : s.listeners) shutdown(fd, SHUT_RDWR);
  for (Conn& conn : s.conns) shutdown(conn.fd, SHUT_RDWR);
}

// wait_for_stop() returns when SIGINT or SIGTERM arrives on sig_fd or --max-seconds pass.
void wait_for_stop(Server& s, int sig_fd) {
  int timeout_ms = s.opts.max_seconds > 0 ? static_cast<int>(s.opts.max_seconds * 1000) : -1;
  pollfd pfd{sig_fd, POLLIN, 0};
  int ready = -1;
  for (int tries = 0; tries < 1000 && ready < 0; ++tries) {  // retried only on EINTR
    ready = poll(&pfd, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) {
      std::fprintf(stderr, "c1m_server: poll: %s; stopping\n", strerror(errno));
      break;
    }
  }
  signalfd_siginfo info{};
  if (ready > 0 && read(sig_fd, &info, sizeof info) == sizeof info)
    std::fprintf(stderr, "c1m_server: %s, stopping\n", strsignal(static_cast<int>(info.ssi_signo)));
}

// open_listeners() gives every server a listener on each port; false after saying why.
bool open_listeners(std::deque<Server>& servers, bool reuse_port) {
  for (Server& s : servers) {
    for (int port = s.opts.first_port; port <= s.opts.last_port; ++port) {
      int fd = open_listener(s.opts.host, port, reuse_port);
      if (fd < 0) return false;
      s.listeners.push_back(fd);
    }
  }
  return true;
}

// start_accepting() starts a coroutine per listening socket of s, on the calling worker.
void start_accepting(Server& s) {
  for (int fd : s.listeners) coil::go([&s, fd] { accept_on(s, fd); });
}

// serve_threads() runs every server on its own worker of a Runtime until a stop signal or
// --max-seconds; worker 0 also waits for that, then has each worker stop its own server.
void serve_threads(std::deque<Server>& servers, int sig_fd) {
  const int n = static_cast<int>(servers.size());
  coil::Runtime runtime({.workers = n});
  for (int i = 0; i < n; ++i) {
    runtime.go_on(i, [&s = servers[static_cast<std::size_t>(i)]] { start_accepting(s); });
  }
  runtime.go_on(0, [&] {
    wait_for_stop(servers.front(), sig_fd);
    for (int i = 0; i < n; ++i) {
      runtime.go_on(i, [&s = servers[static_cast<std::size_t>(i)]] { stop(s); });
    }
  });
  runtime.wait();
}

// total() adds up the servers' counts for the summary.
Server total(const std::deque<Server>& servers) {
  Server sum;
  sum.started = servers.front().started;
  for (const Server& s : servers) {
    sum.accepted += s.accepted;
    sum.peak_open += s.peak_open;  // an upper bound: the workers' peaks need not coincide
    sum.fd_shortages += s.fd_shortages;
    for (const auto& [err, count] : s.conn_errors) sum.conn_errors[err] += count;
  }
  return sum;
}

void print_summary(const Server& s) {
  double seconds = std::chrono::duration<double>(Clock::now() - s.started).count();
  std::printf("summary: accepted %" PRIu64 " connections in %.1f s, peak %" PRIu64
              " open at once, %" PRIu64 " accept retries for want of descriptors\n",
              s.accepted, seconds, s.peak_open, s.fd_shortages);
  for (const auto& [err, count] : s.conn_errors)
    std::printf("  %" PRIu64 " connections ended with: %s\n", count, strerror(err));
  std::fflush(stdout);
}

// serve_process() is one server process: its signalfd, workers, listeners and summary.
int serve_process(const Options& opts) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  int sig_fd = -1;
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0 ||
      (sig_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC)) < 0) {
    std::fprintf(stderr, "c1m_server: signalfd: %s\n", strerror(errno));
    return 1;
  }
  std::string limit_note = raise_fd_limit();
  std::deque<Server> servers(static_cast<std::size_t>(opts.threads));
  for (Server& s : servers) s.opts = opts;
  if (!open_listeners(servers, opts.threads > 1 || opts.procs > 1)) {
    for (Server& s : servers) {
      for (int fd : s.listeners) close(fd);
    }
    return 1;
  }
  std::printf("listening on ports %d-%d\n%s\n", opts.first_port, opts.last_port,
              limit_note.c_str());
  std::fflush(stdout);
  if (opts.threads == 1) {
    coil::run([&] {
      start_accepting(servers.front());
      wait_for_stop(servers.front(), sig_fd);
      stop(servers.front());
    });
  } else {
    serve_threads(servers, sig_fd);
  }
  close(sig_fd);
  print_summary(total(servers));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"c1m_server: accepts and echoes as many TCP connections as it can"};
  Options opts;
  app.add_option("--host", opts.host, "IPv4 address to listen on")->check(ipv4_check);
  app.add_option("--ports", opts.ports, "Range of ports to listen on, FIRST-LAST")
      ->check(range_check);
  app.add_option("--max-seconds", opts.max_seconds, "Stop by itself after this long (0: never)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--threads", opts.threads,
                 "Worker threads per process, each listening on every port (SO_REUSEPORT)")
      ->check(CLI::Range(1, 256));
  app.add_option("--procs", opts.procs,
                 "Processes, each listening on every port (SO_REUSEPORT); RLIMIT_NOFILE caps "
                 "the connections of each")
      ->check(CLI::Range(1, 1024));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  parse_range(opts.ports, opts.first_port, opts.last_port);
  signal(SIGPIPE, SIG_IGN);  // a vanished client makes write() fail with EPIPE instead
  if (opts.procs == 1) return serve_process(opts);
  try {
    return coil::fork_workers(opts.procs, [&](int) { return serve_process(opts); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "c1m_server: %s\n", e.what());
    return 1;
  }
}
