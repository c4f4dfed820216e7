// listen_tcp() and local_port() (coil/net.hpp).
#include "coil/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace coil {
namespace {

// Address is a sockaddr for an IPv4 or IPv6 literal and a port.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
};

Address parse(const std::string& host, int port) {
  if (port < 0 || port > 65535) {
    throw std::invalid_argument("coil: listen_tcp: port " + std::to_string(port) +
                                " is not in 0..65535");
  }
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    a.length = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    a.length = sizeof *v6;
    a.family = AF_INET6;
  } else {
    throw std::invalid_argument("coil: listen_tcp: '" + host +
                                "' is not an IPv4 or IPv6 address literal");
  }
  return a;
}

[[noreturn]] void fail(int fd, const char* call, const std::string& host, int port) {
  int err = errno;
  if (fd >= 0) close(fd);
  throw std::system_error(
      err, std::generic_category(),
      std::string("coil: listen_tcp on ") + host + " port " + std::to_string(port) + ": " + call);
}

}  // namespace

int listen_tcp(const std::string& host, int port, ListenOptions opts) {
  Address a = parse(host, port);
  int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(-1, "socket", host, port);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    fail(fd, "setsockopt(SO_REUSEADDR)", host, port);
  }
  if (opts.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    fail(fd, "setsockopt(SO_REUSEPORT)", host, port);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&a.storage), a.length) != 0) {
    fail(fd, "bind", host, port);
  }
  if (listen(fd, opts.backlog) != 0) fail(fd, "listen", host, port);
  return fd;
}

int local_port(int fd) noexcept {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
  errno = EAFNOSUPPORT;
  return -1;
}

}  // namespace coil
