// Hooked name resolution: getaddrinfo, getnameinfo, gethostbyname(2) and
// their _r forms. glibc's resolver blocks (and reads files, and may wait
// seconds for a DNS server), so in a coroutine the real call runs on the
// resolver pool while the coroutine waits; the scheduler runs on.
#include <netdb.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <vector>

#include "blocking_pool.hpp"
#include "io.hpp"
#include "real.hpp"

namespace coil::hook {
namespace {

template <class Call>
int resolve_on_pool(Call&& call) {
  return BlockingPool::resolver().run_call(call);
}

// HostResult is the storage gethostbyname() returns a pointer into. The
// plain function reuses one static buffer; here each call gets its own, and
// a thread keeps its last few, so concurrent coroutines never write into a
// buffer another is reading.
struct HostResult {
  hostent entry{};
  std::vector<char> buffer = std::vector<char>(1024);
};

hostent* host_by_name(const char* name, int family) {
  static constexpr std::size_t kKept = 8;
  static thread_local std::unique_ptr<HostResult> kept[kKept];
  static thread_local std::size_t next = 0;
  auto result = std::make_unique<HostResult>();
  hostent* out = nullptr;
  int herr = 0;
  for (;;) {
    int rc = gethostbyname2_r(name, family, &result->entry, result->buffer.data(),
                              result->buffer.size(), &out, &herr);
    if (rc != ERANGE || result->buffer.size() >= (1u << 20)) break;
    result->buffer.resize(result->buffer.size() * 2);
  }
  h_errno = herr;
  if (!out) return nullptr;
  kept[next] = std::move(result);
  next = (next + 1) % kKept;
  return out;
}

}  // namespace
}  // namespace coil::hook

using namespace coil::hook;  // NOLINT: the hooks below are the C ABI

COIL_HOOK int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                          addrinfo** res) {
  if (!in_coroutine()) return real::getaddrinfo(node, service, hints, res);
  return resolve_on_pool([=] { return real::getaddrinfo(node, service, hints, res); });
}

COIL_HOOK int getnameinfo(const sockaddr* addr, socklen_t addrlen, char* host, socklen_t hostlen,
                          char* serv, socklen_t servlen, int flags) {
  if (!in_coroutine()) {
    return real::getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags);
  }
  return resolve_on_pool(
      [=] { return real::getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags); });
}

COIL_HOOK int gethostbyname2_r(const char* name, int family, hostent* ret, char* buf, size_t buflen,
                               hostent** result, int* h_errnop) {
  if (!in_coroutine()) {
    return real::gethostbyname2_r(name, family, ret, buf, buflen, result, h_errnop);
  }
  return resolve_on_pool(
      [=] { return real::gethostbyname2_r(name, family, ret, buf, buflen, result, h_errnop); });
}

COIL_HOOK int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen,
                              hostent** result, int* h_errnop) {
  if (!in_coroutine()) return real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
  return resolve_on_pool(
      [=] { return real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop); });
}

COIL_HOOK hostent* gethostbyname2(const char* name, int family) {
  if (!in_coroutine()) return real::gethostbyname2(name, family);
  return host_by_name(name, family);
}

COIL_HOOK hostent* gethostbyname(const char* name) {
  if (!in_coroutine()) return real::gethostbyname(name);
  return host_by_name(name, AF_INET);
}

// Linked in with every scheduler (link_all.cpp).
namespace coil::hook::anchor {
extern const char dns = 0;
}  // namespace coil::hook::anchor
