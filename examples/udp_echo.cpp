// udp_echo: a UDP echo server, and a client that checks every echo within a timeout.
//
// The server is one coroutine in a recvfrom()/sendto() loop that returns each datagram to its
// sender. The client (--client) sends --count datagrams one after another, each of a different
// length and carrying its sequence number, and waits for each echo with SO_RCVTIMEO set to
// --timeout-ms: a recvfrom() that times out means the datagram or its echo was lost. It checks
// that every echo holds exactly the bytes sent, skips late echoes of earlier datagrams, prints
// the tally and exits non-zero if anything was lost or corrupted. Both sides are written in
// blocking style; linked with libcoil the hooked calls park the coroutine instead of the thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "coil/scheduler.hpp"

namespace {

constexpr std::size_t kMaxDatagram = 65536;
constexpr std::size_t kMaxPayload = 1400;  // fits one Ethernet frame

struct Options {
  std::string host = "127.0.0.1";
  int port = 9527;
  bool client = false;
  int count = 100;
  int timeout_ms = 1000;
};

std::string ipv4_check(const std::string& text) {
  in_addr addr{};
  return inet_pton(AF_INET, text.c_str(), &addr) == 1 ? std::string()
                                                      : "not an IPv4 address: " + text;
}

sockaddr_in make_address(const Options& opts) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(opts.port));
  inet_pton(AF_INET, opts.host.c_str(), &addr.sin_addr);  // checked by ipv4_check
  return addr;
}

bool same_address(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
}

// is_transient() is true for recvfrom()/sendto() errors that do not end the server.
bool is_transient(int err) {
  return err == EINTR || err == ECONNREFUSED || err == ENOBUFS || err == ENOMEM || err == EAGAIN ||
         err == EWOULDBLOCK;
}

// serve() binds the socket, announces its port and echoes datagrams until a fatal error.
int serve(const Options& opts) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    std::fprintf(stderr, "udp_echo: socket: %s\n", std::strerror(errno));
    return 1;
  }
  sockaddr_in addr = make_address(opts);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "udp_echo: bind %s:%d: %s\n", opts.host.c_str(), opts.port,
                 std::strerror(errno));
    close(fd);
    return 1;
  }
  std::printf("listening on port %d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  std::vector<char> buf(kMaxDatagram);
  for (;;) {
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer;
    ssize_t n =
        recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
    if (n >= 0 && sendto(fd, buf.data(), static_cast<std::size_t>(n), 0,
                         reinterpret_cast<sockaddr*>(&peer), peer_len) == n)
      continue;
    int err = errno;
    std::fprintf(stderr, "udp_echo: %s: %s\n", n < 0 ? "recvfrom" : "sendto", std::strerror(err));
    if (!is_transient(err)) break;
  }
  close(fd);
  return 1;
}

// make_payload() builds datagram seq: "seq=N " and then letters, its length varying with seq.
std::string make_payload(int seq) {
  std::string payload = "seq=" + std::to_string(seq) + " ";
  std::size_t size = payload.size() + static_cast<std::size_t>(seq) * 37 % kMaxPayload;
  for (std::size_t i = payload.size(); i < size; ++i)
    payload.push_back(static_cast<char>('a' + (static_cast<std::size_t>(seq) + i) % 26));
  return payload;
}

// sequence_of() returns the sequence number a datagram carries, or -1.
int sequence_of(const char* data, std::size_t len) {
  std::string head(data, std::min(len, std::size_t{16}));
  int seq = -1;
  return std::sscanf(head.c_str(), "seq=%d ", &seq) == 1 ? seq : -1;
}

enum class Outcome { kOk, kLost, kCorrupt };

// await_echo() waits for the echo of datagram seq, skipping late echoes of earlier ones and
// datagrams from elsewhere. Each recvfrom() gives up after SO_RCVTIMEO.
Outcome await_echo(int fd, const sockaddr_in& server, int seq, const std::string& sent, int& late) {
  char buf[kMaxPayload + 64];
  for (int tries = 0; tries <= seq + 1; ++tries) {  // at most one late echo per earlier datagram
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        std::fprintf(stderr, "udp_echo: recvfrom: %s\n", std::strerror(errno));
      return Outcome::kLost;
    }
    if (!same_address(from, server)) continue;
    int got = sequence_of(buf, static_cast<std::size_t>(n));
    if (got >= 0 && got < seq) {
      ++late;
      continue;
    }
    bool same = static_cast<std::size_t>(n) == sent.size() && std::memcmp(buf, sent.data(), n) == 0;
    return same ? Outcome::kOk : Outcome::kCorrupt;
  }
  return Outcome::kLost;
}

// run_client() sends --count datagrams, checks their echoes and prints the tally.
int run_client(const Options& opts) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    std::fprintf(stderr, "udp_echo: socket: %s\n", std::strerror(errno));
    return 1;
  }
  timeval timeout{opts.timeout_ms / 1000, (opts.timeout_ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
    std::fprintf(stderr, "udp_echo: SO_RCVTIMEO: %s\n", std::strerror(errno));
    close(fd);
    return 1;
  }
  sockaddr_in server = make_address(opts);
  int ok = 0;
  int lost = 0;
  int corrupt = 0;
  int late = 0;
  for (int seq = 0; seq < opts.count; ++seq) {
    std::string payload = make_payload(seq);
    if (sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&server),
               sizeof server) != static_cast<ssize_t>(payload.size())) {
      std::fprintf(stderr, "udp_echo: sendto %s:%d: %s\n", opts.host.c_str(), opts.port,
                   std::strerror(errno));
      ++lost;
      continue;
    }
    switch (await_echo(fd, server, seq, payload, late)) {
      case Outcome::kOk:
        ++ok;
        break;
      case Outcome::kLost:
        ++lost;
        break;
      case Outcome::kCorrupt:
        ++corrupt;
        break;
    }
  }
  close(fd);
  std::printf("sent %d datagrams to %s:%d: ok %d, lost %d, corrupt %d, late %d\n", opts.count,
              opts.host.c_str(), opts.port, ok, lost, corrupt, late);
  return lost == 0 && corrupt == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"udp_echo: a UDP echo server, or with --client a client that checks the echoes"};
  Options opts;
  app.add_option("--host", opts.host, "IPv4 address to listen on or send to")->check(ipv4_check);
  app.add_option("--port", opts.port, "UDP port (server: 0 lets the kernel choose)")
      ->check(CLI::Range(0, 65535));
  app.add_flag("--client", opts.client, "Run the client instead of the server");
  app.add_option("--count", opts.count, "Client: datagrams to send")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--timeout-ms", opts.timeout_ms, "Client: how long to wait for each echo")
      ->check(CLI::Range(1, 3600000));
  try {
    app.parse(argc, argv);
    if (opts.client && opts.port == 0)
      throw CLI::ValidationError("--port", "the client needs a port");
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  return coil::run([&] { return opts.client ? run_client(opts) : serve(opts); });
}
