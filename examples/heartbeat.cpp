// heartbeat: a TCP heartbeat client and server; each side declares a silent peer dead.
//
// The client (--client) sends "beat N" every --interval-ms and the server answers each with
// "ack N", its own heartbeat. Both wait for the other with poll() timeouts: a server that hears
// nothing from a client for --timeout-ms prints `peer ADDR dead: no heartbeat for T ms` and
// closes the connection; a client that gets no answer in --timeout-ms prints the same about the
// server and exits 1. --stop-after K makes the client fall silent after K beats while keeping
// the socket open, to show the server detecting a dead peer; the client then waits for the
// server to close the connection. One coroutine per connection, written as blocking code.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include "coil/scheduler.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kBacklog = 1024;
constexpr std::size_t kMaxLine = 128;
constexpr auto kAcceptBackoff = 100ms;

struct Options {
  std::string host = "127.0.0.1";
  int port = 9530;
  bool server = false;
  bool client = false;
  int timeout_ms = 3000;
  int interval_ms = 1000;
  int count = 10;
  int stop_after = 0;  // 0: never stop sending
};

std::string ipv4_check(const std::string& text) {
  in_addr addr{};
  return inet_pton(AF_INET, text.c_str(), &addr) == 1 ? std::string()
                                                      : "not an IPv4 address: " + text;
}

std::string address_text(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(addr.sin_port));
}

sockaddr_in make_address(const Options& opts) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(opts.port));
  inet_pton(AF_INET, opts.host.c_str(), &addr.sin_addr);  // checked by ipv4_check
  return addr;
}

// send_line() writes text and a newline; false with errno set on failure.
bool send_line(int fd, const std::string& text) {
  std::string line = text + "\n";
  for (std::size_t done = 0; done < line.size();) {
    ssize_t n = write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno != EINTR) return false;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  return true;
}

// LineReader reads newline-terminated lines from a socket, each within a timeout.
class LineReader {
 public:
  enum class Result { kLine, kClosed, kTimeout, kError };

  explicit LineReader(int fd) : fd_(fd) {}

  // next() waits at most timeout_ms for the next whole line and stores it, without its newline,
  // in line. kError leaves errno set (EMSGSIZE for a line longer than kMaxLine).
  Result next(std::string& line, int timeout_ms) {
    Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (std::size_t tries = 0; tries < 4 * kMaxLine; ++tries) {  // each try reads or times out
      if (std::size_t nl = buf_.find('\n'); nl != std::string::npos) {
        line.assign(buf_, 0, nl);
        buf_.erase(0, nl + 1);
        return Result::kLine;
      }
      if (buf_.size() > kMaxLine) return fail(EMSGSIZE);
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd pfd{fd_, POLLIN, 0};
      int ready = left > 0 ? poll(&pfd, 1, static_cast<int>(left)) : 0;
      if (ready == 0) return Result::kTimeout;
      if (ready < 0 && errno != EINTR) return Result::kError;
      char chunk[kMaxLine];
      ssize_t n = ready > 0 ? read(fd_, chunk, sizeof chunk) : -1;
      if (n == 0) return Result::kClosed;
      if (n > 0) buf_.append(chunk, static_cast<std::size_t>(n));
      if (n < 0 && errno != EINTR && errno != EAGAIN) return Result::kError;
    }
    return fail(EPROTO);
  }

 private:
  Result fail(int err) {
    errno = err;
    return Result::kError;
  }

  int fd_;
  std::string buf_;
};

// report_end() says why a client's connection ends: silence, a hang-up or an error.
void report_end(const Options& opts, LineReader::Result r, const std::string& peer, long beats) {
  if (r == LineReader::Result::kTimeout) {
    std::printf("peer %s dead: no heartbeat for %d ms\n", peer.c_str(), opts.timeout_ms);
  } else if (r == LineReader::Result::kClosed) {
    std::printf("peer %s closed the connection after %ld heartbeats\n", peer.c_str(), beats);
  } else {
    std::fprintf(stderr, "heartbeat: peer %s: %s\n", peer.c_str(), std::strerror(errno));
  }
  std::fflush(stdout);
}

// serve_peer() answers one client's beats until it closes or stays silent too long.
void serve_peer(const Options& opts, int fd, sockaddr_in addr) {
  std::string peer = address_text(addr);
  LineReader in(fd);
  std::string line;
  for (long beats = 0;; ++beats) {
    LineReader::Result r = in.next(line, opts.timeout_ms);
    if (r != LineReader::Result::kLine) {
      report_end(opts, r, peer, beats);
      break;
    }
    long n = 0;
    if (std::sscanf(line.c_str(), "beat %ld", &n) != 1) {
      std::fprintf(stderr, "heartbeat: peer %s sent \"%s\", not a heartbeat\n", peer.c_str(),
                   line.c_str());
      break;
    }
    if (!send_line(fd, "ack " + std::to_string(n))) {
      std::fprintf(stderr, "heartbeat: peer %s: write: %s\n", peer.c_str(), std::strerror(errno));
      break;
    }
  }
  close(fd);
}

// open_listener() returns a listening socket, or -1 after saying why.
int open_listener(const Options& opts) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    std::fprintf(stderr, "heartbeat: socket: %s\n", std::strerror(errno));
    return -1;
  }
  sockaddr_in addr = make_address(opts);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, kBacklog) != 0) {
    std::fprintf(stderr, "heartbeat: listen on %s:%d: %s\n", opts.host.c_str(), opts.port,
                 std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// run_server() accepts clients, one coroutine each; EMFILE is reported once and retried.
int run_server(const Options& opts) {
  int listen_fd = open_listener(opts);
  if (listen_fd < 0) return 1;
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &len);
  std::printf("listening on port %d\n", ntohs(bound.sin_port));
  std::fflush(stdout);
  bool short_of_fds = false;
  for (;;) {
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer;
    int fd = accept(listen_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len);
    if (fd >= 0) {
      short_of_fds = false;
      try {
        coil::go([&opts, fd, peer] { serve_peer(opts, fd, peer); });
      } catch (const coil::SpawnError& e) {
        std::fprintf(stderr, "heartbeat: no coroutine for a client: %s\n", e.what());
        close(fd);
      }
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM) break;
    if (!short_of_fds)
      std::fprintf(stderr, "heartbeat: accept: %s (see ulimit -n); retrying every 100 ms\n",
                   std::strerror(errno));
    short_of_fds = true;
    coil::sleep_for(kAcceptBackoff);
  }
  std::fprintf(stderr, "heartbeat: accept: %s\n", std::strerror(errno));
  close(listen_fd);
  return 1;
}

// await_close() is the client after --stop-after: silent, it waits for the server to hang up,
// for at most as long as the rest of its beats would have taken plus its timeout.
int await_close(const Options& opts, LineReader& in, const std::string& server) {
  std::printf("stopped sending after %d heartbeats; keeping the connection open\n",
              opts.stop_after);
  std::fflush(stdout);
  long long rest_ms = static_cast<long long>(opts.count - opts.stop_after) * opts.interval_ms;
  int budget_ms = static_cast<int>(std::min<long long>(rest_ms + opts.timeout_ms, INT_MAX));
  Clock::time_point start = Clock::now();
  std::string line;
  LineReader::Result r = in.next(line, budget_ms);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (r == LineReader::Result::kClosed) {
    std::printf("server %s closed the connection %lld ms after the last heartbeat\n",
                server.c_str(), static_cast<long long>(waited.count()));
    return 0;
  }
  std::printf("server %s did not close the silent connection within %d ms\n", server.c_str(),
              budget_ms);
  return 1;
}

// beat() sends heartbeat n and waits for its answer; false after saying what went wrong.
bool beat(const Options& opts, int fd, LineReader& in, const std::string& server, int n) {
  if (!send_line(fd, "beat " + std::to_string(n))) {
    std::fprintf(stderr, "heartbeat: write to %s: %s\n", server.c_str(), std::strerror(errno));
    return false;
  }
  std::string line;
  switch (in.next(line, opts.timeout_ms)) {
    case LineReader::Result::kLine:
      if (line == "ack " + std::to_string(n)) return true;
      std::fprintf(stderr, "heartbeat: %s answered \"%s\" to beat %d\n", server.c_str(),
                   line.c_str(), n);
      return false;
    case LineReader::Result::kTimeout:
      std::printf("peer %s dead: no heartbeat for %d ms\n", server.c_str(), opts.timeout_ms);
      return false;
    case LineReader::Result::kClosed:
      std::printf("peer %s closed the connection after %d heartbeats\n", server.c_str(), n - 1);
      return false;
    case LineReader::Result::kError:
      break;
  }
  std::fprintf(stderr, "heartbeat: read from %s: %s\n", server.c_str(), std::strerror(errno));
  return false;
}

// exchange() runs the client's side of the conversation on a connected socket.
int exchange(const Options& opts, int fd, const std::string& server) {
  LineReader in(fd);
  for (int n = 1; n <= opts.count; ++n) {
    if (opts.stop_after > 0 && n > opts.stop_after) return await_close(opts, in, server);
    if (!beat(opts, fd, in, server, n)) return 1;
    if (n < opts.count) coil::sleep_for(std::chrono::milliseconds(opts.interval_ms));
  }
  std::printf("sent %d heartbeats to %s, all answered\n", opts.count, server.c_str());
  return 0;
}

int run_client(const Options& opts) {
  sockaddr_in addr = make_address(opts);
  std::string server = address_text(addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "heartbeat: connect to %s: %s\n", server.c_str(), std::strerror(errno));
    if (fd >= 0) close(fd);
    return 1;
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  std::printf("connected from %s to %s\n", address_text(local).c_str(), server.c_str());
  std::fflush(stdout);
  int status = exchange(opts, fd, server);
  std::fflush(stdout);
  close(fd);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"heartbeat: TCP heartbeats; each side detects a peer that falls silent"};
  Options opts;
  auto* server = app.add_flag("--server", opts.server, "Run the server");
  auto* client = app.add_flag("--client", opts.client, "Run the client");
  server->excludes(client);
  app.add_option("--host", opts.host, "IPv4 address to listen on or connect to")->check(ipv4_check);
  app.add_option("--port", opts.port, "TCP port (server: 0 lets the kernel choose)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--timeout-ms", opts.timeout_ms, "Silence after which the peer is dead")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--interval-ms", opts.interval_ms, "Client: time between heartbeats")
      ->check(CLI::Range(0, 3600000));
  app.add_option("--count", opts.count, "Client: heartbeats to send")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--stop-after", opts.stop_after,
                 "Client: fall silent after this many heartbeats, keeping the connection open")
      ->check(CLI::Range(0, 1000000));
  try {
    app.parse(argc, argv);
    if (!opts.server && !opts.client) throw CLI::RequiredError("--server or --client");
    if (opts.client && opts.port == 0)
      throw CLI::ValidationError("--port", "the client needs a port");
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a vanished peer makes write() fail with EPIPE instead
  return coil::run([&] { return opts.server ? run_server(opts) : run_client(opts); });
}
