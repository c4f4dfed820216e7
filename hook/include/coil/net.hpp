// Listening sockets for servers that spread their connections over worker
// threads or processes: each worker listens on the same address with
// SO_REUSEPORT and the kernel shares the incoming connections out among the
// listeners (by a hash of the connection's addresses), so each worker accepts
// its own and no accept() is contended.
#pragma once

#include <cstdint>
#include <string>

namespace coil {

// ListenOptions configure listen_tcp().
struct ListenOptions {
  int backlog = 4096;       // the kernel caps it at net.core.somaxconn
  bool reuse_port = false;  // SO_REUSEPORT: several sockets may listen on the address
};

// listen_tcp() returns a listening TCP socket bound to host:port (an IPv4 or
// IPv6 literal; port 0 lets the kernel choose), with SO_REUSEADDR and, if
// asked, SO_REUSEPORT. Blocking, as socket() makes it (inside a coroutine the
// hooks make accept() park). Throws std::system_error naming the address and
// the call that failed; std::invalid_argument for an address that is not a
// literal or a port outside 0..65535.
int listen_tcp(const std::string& host, int port, ListenOptions opts = {});

// local_port() is the port fd is bound to (what port 0 became), or -1 with
// errno set.
int local_port(int fd) noexcept;

}  // namespace coil
