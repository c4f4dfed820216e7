// unix_echo: an echo server on a unix stream socket, and a client that checks the echoes.
//
// The server binds --path, one coroutine per connection, each echoing what it reads. A socket
// file left by a server that died is removed at start; a live server on the path, or a file that
// is not a socket, is an error (nothing is deleted). On SIGINT or SIGTERM the server closes its
// connections and removes the socket file. The client (--client) runs --clients coroutines at
// once, each connecting and sending --messages messages of varying length, reading every echo
// back in full and comparing it byte for byte; it exits non-zero if any echo was wrong or short.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/intrusive/list.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "coil/scheduler.hpp"

namespace {

using namespace std::chrono_literals;
namespace bi = boost::intrusive;

constexpr int kBacklog = 4096;
constexpr std::size_t kBufferSize = 4096;
constexpr auto kAcceptBackoff = 100ms;
constexpr int kClientTimeoutSeconds = 10;  // a client gives up on an echo after this long

struct Options {
  std::string path = "/tmp/coil_unix_echo.sock";
  bool client = false;
  int clients = 8;
  int messages = 100;
};

std::string path_check(const std::string& path) {
  return path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)
             ? "a socket path must be 1 to " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                   " bytes long"
             : std::string();
}

sockaddr_un make_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());  // length checked by path_check
  return addr;
}

// connect_to() returns a stream socket connected to path, or -1 with errno set.
int connect_to(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_un addr = make_address(path);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  int err = errno;
  close(fd);
  errno = err;
  return -1;
}

// Conn is one connection; it lives on its coroutine's stack and unlinks itself when it goes.
struct Conn : bi::list_base_hook<bi::link_mode<bi::auto_unlink>> {
  int fd = -1;
};

struct Server {
  std::string path;
  bi::list<Conn, bi::constant_time_size<false>> conns;  // so that stop() can reach them
  bool stopping = false;
};

// remove_stale_socket() clears path for bind(): only a socket file nobody listens on goes.
bool remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;
    std::fprintf(stderr, "unix_echo: %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  if (!S_ISSOCK(st.st_mode)) {
    std::fprintf(stderr, "unix_echo: %s exists and is not a socket; not removing it\n",
                 path.c_str());
    return false;
  }
  if (int fd = connect_to(path); fd >= 0) {
    close(fd);
    std::fprintf(stderr, "unix_echo: a server is already listening on %s\n", path.c_str());
    return false;
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    std::fprintf(stderr, "unix_echo: removing stale %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  std::fprintf(stderr, "unix_echo: removed the stale socket file %s\n", path.c_str());
  return true;
}

// open_listener() binds and listens on path, or returns -1 after saying why.
int open_listener(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) {
    std::fprintf(stderr, "unix_echo: socket: %s\n", std::strerror(errno));
    return -1;
  }
  sockaddr_un addr = make_address(path);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, kBacklog) != 0) {
    std::fprintf(stderr, "unix_echo: listen on %s: %s\n", path.c_str(), std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// write_all() writes len bytes of buf to fd; false with errno set on failure.
bool write_all(int fd, const char* buf, std::size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno != EINTR) return false;
    if (n > 0) {
      buf += n;
      len -= static_cast<std::size_t>(n);
    }
  }
  return true;
}

// serve_conn() echoes one connection until the client closes it (or stop() shuts it down).
void serve_conn(Server& s, int fd) {
  Conn conn;
  conn.fd = fd;
  s.conns.push_back(conn);
  char buf[kBufferSize];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0 && write_all(fd, buf, static_cast<std::size_t>(n))) continue;
    if (n != 0 && !s.stopping)
      std::fprintf(stderr, "unix_echo: %s: %s\n", n < 0 ? "read" : "write", std::strerror(errno));
    break;
  }
  conn.unlink();
  close(fd);
}

// accept_loop() accepts until stop(); on EMFILE it says so once and retries every 100 ms.
void accept_loop(Server& s, int listen_fd) {
  bool short_of_fds = false;
  while (!s.stopping) {
    int fd = accept(listen_fd, nullptr, nullptr);
    if (fd >= 0 && s.stopping) close(fd);  // stop()'s wake-up call
    if (fd >= 0 && !s.stopping) {
      short_of_fds = false;
      try {
        coil::go([&s, fd] { serve_conn(s, fd); }, coil::SpawnOptions{.name = "conn"});
      } catch (const coil::SpawnError& e) {
        std::fprintf(stderr, "unix_echo: no coroutine for a client: %s\n", e.what());
        close(fd);
      }
    }
    if (fd >= 0 || errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM) {
      std::fprintf(stderr, "unix_echo: accept: %s\n", std::strerror(errno));
      break;
    }
    if (!short_of_fds)
      std::fprintf(stderr, "unix_echo: accept: %s (see ulimit -n); retrying every 100 ms\n",
                   std::strerror(errno));
    short_of_fds = true;
    coil::sleep_for(kAcceptBackoff);
  }
  close(listen_fd);
}

// stop() ends every connection with shutdown() and wakes the accepting coroutine with a
// connection of its own (a unix listener, unlike a TCP one, keeps failing accept() with EAGAIN
// after shutdown(), so that would not wake it).
void stop(Server& s) {
  s.stopping = true;
  for (Conn& conn : s.conns) shutdown(conn.fd, SHUT_RDWR);
  if (int fd = connect_to(s.path); fd >= 0) close(fd);
}

// wait_for_signal() returns once SIGINT or SIGTERM arrives on sig_fd.
void wait_for_signal(int sig_fd) {
  pollfd pfd{sig_fd, POLLIN, 0};
  for (int tries = 0; tries < 1000; ++tries) {  // retried only on EINTR
    if (poll(&pfd, 1, -1) >= 0 || errno != EINTR) break;
  }
  signalfd_siginfo info{};
  if (read(sig_fd, &info, sizeof info) == sizeof info)
    std::fprintf(stderr, "unix_echo: %s, stopping\n", strsignal(static_cast<int>(info.ssi_signo)));
}

int run_server(Server& s, int sig_fd) {
  if (!remove_stale_socket(s.path)) return 1;
  int listen_fd = open_listener(s.path);
  if (listen_fd < 0) return 1;
  std::printf("listening on %s\n", s.path.c_str());
  std::fflush(stdout);
  coil::go([&s, listen_fd] { accept_loop(s, listen_fd); }, coil::SpawnOptions{.name = "accept"});
  wait_for_signal(sig_fd);
  stop(s);
  return 0;
}

// server_main() blocks SIGINT/SIGTERM for a signalfd, serves, and removes the socket file.
int server_main(const Options& opts) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  int sig_fd = -1;
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0 ||
      (sig_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC)) < 0) {
    std::fprintf(stderr, "unix_echo: signalfd: %s\n", std::strerror(errno));
    return 1;
  }
  Server s{.path = opts.path};
  int status = coil::run([&] { return run_server(s, sig_fd); });
  close(sig_fd);
  if (status == 0 && unlink(opts.path.c_str()) != 0) {
    std::fprintf(stderr, "unix_echo: removing %s: %s\n", opts.path.c_str(), std::strerror(errno));
    return 1;
  }
  return status;
}

// message_for() is message m of client k: a header, then letters, its length varying.
std::string message_for(int k, int m) {
  std::string msg = "client " + std::to_string(k) + " message " + std::to_string(m) + " ";
  std::size_t extra = static_cast<std::size_t>(k * 131 + m * 17) % 3000;
  for (std::size_t i = 0; i < extra; ++i) msg.push_back(static_cast<char>('a' + (i + m) % 26));
  return msg;
}

// read_exact() reads len bytes into buf; false on error, end-of-file or timeout.
bool read_exact(int fd, char* buf, std::size_t len) {
  while (len > 0) {
    ssize_t n = read(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = 0;  // end-of-file: no error number to report
    if (n <= 0) return false;
    buf += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

// client() sends its messages one at a time and checks each echo; returns the good ones.
int client(const Options& opts, int k) {
  int fd = connect_to(opts.path);
  if (fd < 0) {
    std::fprintf(stderr, "unix_echo: client %d: connect %s: %s\n", k, opts.path.c_str(),
                 std::strerror(errno));
    return 0;
  }
  timeval timeout{kClientTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  int good = 0;
  std::vector<char> echo;
  for (int m = 0; m < opts.messages; ++m) {
    std::string msg = message_for(k, m);
    echo.assign(msg.size(), '\0');
    if (!write_all(fd, msg.data(), msg.size()) || !read_exact(fd, echo.data(), echo.size())) {
      std::fprintf(stderr, "unix_echo: client %d message %d: %s\n", k, m,
                   errno == 0 ? "connection closed" : std::strerror(errno));
      break;
    }
    if (std::memcmp(echo.data(), msg.data(), msg.size()) != 0) {
      std::fprintf(stderr, "unix_echo: client %d message %d: the echo differs\n", k, m);
      break;
    }
    ++good;
  }
  close(fd);
  return good;
}

int client_main(const Options& opts) {
  std::vector<coil::JoinHandle<int>> clients;
  for (int k = 0; k < opts.clients; ++k)
    clients.push_back(coil::spawn([&opts, k] { return client(opts, k); }));
  long good = 0;
  for (auto& c : clients) good += c.join();
  long total = static_cast<long>(opts.clients) * opts.messages;
  std::printf("%d clients x %d messages: %ld echoed correctly, %ld failed\n", opts.clients,
              opts.messages, good, total - good);
  return good == total ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"unix_echo: echo server on a unix socket, or with --client a checking client"};
  Options opts;
  app.add_option("--path", opts.path, "Unix socket path")->check(path_check);
  app.add_flag("--client", opts.client, "Run the clients instead of the server");
  app.add_option("--clients", opts.clients, "Client: concurrent connections")
      ->check(CLI::Range(1, 100000));
  app.add_option("--messages", opts.messages, "Client: messages per connection")
      ->check(CLI::Range(1, 10000000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a vanished peer makes write() fail with EPIPE instead
  if (opts.client) return coil::run([&] { return client_main(opts); });
  return server_main(opts);
}
