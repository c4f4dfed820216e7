// echo_server: the seeds' toupper echo server, one coroutine per connection.
//
// It is written exactly as a thread-per-connection server would be: accept() in a loop, and for
// each client a function that read()s bytes, upper-cases them and write()s them back until the
// client goes away. The only difference is coil::go where a thread server has pthread_create.
// Linked with libcoil, the hooked read/write/accept park the coroutine instead of the thread, so
// one thread serves every client. The per-message path is one read and one write of exactly the
// bytes read (this server is measured in syscalls per message). When accept() runs out of file
// descriptors (EMFILE), the server says so once and retries every 100 ms while the connections
// it has keep being served. --threads N runs N worker threads, each with its own SO_REUSEPORT
// listener, so the kernel spreads the clients over them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "coil/net.hpp"
#include "coil/runtime.hpp"
#include "coil/scheduler.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int kBacklog = 4096;
constexpr std::size_t kBufferSize = 16 * 1024;
constexpr auto kAcceptBackoff = 100ms;
constexpr auto kReportInterval = 10s;

struct Options {
  std::string host = "127.0.0.1";
  int port = 9527;
  int threads = 1;  // worker threads, each with its own listener (SO_REUSEPORT) and scheduler
  bool pin = false;
};

// peer_text() formats an IPv4 address as "a.b.c.d:port".
std::string peer_text(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(addr.sin_port));
}

// ipv4_check() is a CLI11 validator for --host.
std::string ipv4_check(const std::string& text) {
  in_addr addr{};
  return inet_pton(AF_INET, text.c_str(), &addr) == 1 ? std::string()
                                                      : "not an IPv4 address: " + text;
}

// open_listeners() returns one listening socket per worker on host:port, all on the same port
// (the first one's, when port is 0), or an empty vector after saying why.
std::vector<int> open_listeners(const Options& opts) {
  std::vector<int> fds;
  int port = opts.port;
  try {
    for (int i = 0; i < opts.threads; ++i) {
      fds.push_back(
          coil::listen_tcp(opts.host, port, {.backlog = kBacklog, .reuse_port = opts.threads > 1}));
      if (port == 0) port = coil::local_port(fds.front());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    for (int fd : fds) close(fd);
    fds.clear();
  }
  return fds;
}

// write_all() writes len bytes of buf to fd; one write() unless the kernel takes less.
bool write_all(int fd, const char* buf, std::size_t len, const sockaddr_in& peer) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "echo_server: write to %s: %s\n", peer_text(peer).c_str(),
                   std::strerror(errno));
      return false;
    }
    buf += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

// upper() is std::toupper() in the "C" locale, which this program never leaves (it does not call
// setlocale), written inline: std::toupper is an out-of-line libc call per byte (glibc inlines it
// for C, not for C++), 64 calls per echoed message in the benchmark.
char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// serve_client() echoes upper-cased bytes back to the client until it closes, then closes fd.
void serve_client(int fd, sockaddr_in peer) {
  char buf[kBufferSize];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;  // the client closed its side
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "echo_server: read from %s: %s\n", peer_text(peer).c_str(),
                   std::strerror(errno));
      break;
    }
    for (ssize_t i = 0; i < n; ++i) buf[i] = upper(buf[i]);
    if (!write_all(fd, buf, static_cast<std::size_t>(n), peer)) break;
  }
  if (close(fd) != 0) std::fprintf(stderr, "echo_server: close: %s\n", std::strerror(errno));
}

// fd_limit_text() names the descriptor limit for an EMFILE/ENFILE message.
std::string fd_limit_text(int err) {
  if (err == ENFILE) return "the system-wide file limit (fs.file-max) is reached";
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  return "RLIMIT_NOFILE is " + std::to_string(lim.rlim_cur) + "; raise it with ulimit -n";
}

// is_resource_shortage() is true for accept() errors that pass when connections close.
bool is_resource_shortage(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

// accept_loop() accepts clients and starts a coroutine for each. Returns only on a fatal error.
int accept_loop(int listen_fd) {
  // A shortage is reported once, not once per retry, and a new one no sooner than
  // kReportInterval after the last report (connections that come and go at the limit would
  // otherwise start a new shortage at every accept).
  bool short_of_fds = false;
  bool reported = false;
  auto quiet_until = std::chrono::steady_clock::time_point{};
  for (;;) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = accept(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len);
    if (fd < 0) {
      int err = errno;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (!is_resource_shortage(err)) {
        std::fprintf(stderr, "echo_server: accept: %s\n", std::strerror(err));
        return 1;
      }
      auto now = std::chrono::steady_clock::now();
      if (!short_of_fds && now >= quiet_until) {
        std::fprintf(stderr, "echo_server: accept: %s (%s); retrying every 100 ms\n",
                     std::strerror(err), fd_limit_text(err).c_str());
        reported = true;
        quiet_until = now + kReportInterval;
      }
      short_of_fds = true;
      coil::sleep_for(kAcceptBackoff);
      continue;
    }
    if (short_of_fds && reported) std::fprintf(stderr, "echo_server: accepting again\n");
    short_of_fds = reported = false;
    try {
      coil::go([fd, peer] { serve_client(fd, peer); }, coil::SpawnOptions{.name = "client"});
    } catch (const coil::SpawnError& e) {
      std::fprintf(stderr, "echo_server: no coroutine for %s: %s\n", peer_text(peer).c_str(),
                   e.what());
      close(fd);
      coil::sleep_for(kAcceptBackoff);
    }
  }
}

// serve() opens the listeners, announces their port and accepts until a fatal error: on this
// thread's scheduler, or with --threads on each worker of a Runtime, each accepting its own
// connections (the kernel spreads them over the SO_REUSEPORT listeners).
int serve(const Options& opts) {
  std::vector<int> fds = open_listeners(opts);
  if (fds.empty()) return 1;
  std::printf("listening on port %d\n", coil::local_port(fds.front()));
  std::fflush(stdout);
  std::atomic<int> status{0};
  if (opts.threads == 1) {
    status = coil::run([&] { return accept_loop(fds.front()); });
  } else {
    coil::Runtime runtime({.workers = opts.threads, .pin = opts.pin});
    for (int i = 0; i < opts.threads; ++i) {
      runtime.go_on(i, [&status, fd = fds[static_cast<std::size_t>(i)]] {
        if (int s = accept_loop(fd); s != 0) status = s;
      });
    }
    runtime.wait();
  }
  for (int fd : fds) close(fd);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"echo_server: upper-cases and echoes what each TCP client sends"};
  Options opts;
  app.add_option("--host", opts.host, "IPv4 address to listen on")->check(ipv4_check);
  app.add_option("--port", opts.port, "TCP port to listen on (0: the kernel chooses)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--threads", opts.threads, "Worker threads, each accepting its own clients")
      ->check(CLI::Range(1, 256));
  app.add_flag("--pin", opts.pin, "Pin worker i to CPU i (with --threads)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a client that vanishes makes write() fail with EPIPE instead
  return serve(opts);
}
