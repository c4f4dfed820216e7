// Differential tests of the name-resolution hooks (run on a resolver pool
// inside coroutines): getaddrinfo, gethostbyname(_r), gethostbyname2_r and
// getnameinfo on localhost and literals must give exactly the plain calls'
// results, errors included. Only /etc/hosts names and numeric literals, so
// no test needs a network. Each scenario runs on a plain thread and as a
// coroutine (hook_diff.hpp).
#include <arpa/inet.h>
#include <netdb.h>

#include <string>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// describe() spells one address.
std::string describe(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "family " + std::to_string(sa->sa_family);
}

// lookup() records getaddrinfo's return and every entry of its list.
void lookup(Ctx& c, const char* node, const char* service, const addrinfo* hints) {
  std::string label = std::string("getaddrinfo(") + (node ? node : "NULL") + ", " +
                      (service ? service : "NULL") + ")";
  addrinfo* res = nullptr;
  int r = getaddrinfo(node, service, hints, &res);
  c.val(label, r == 0 ? "0" : gai_strerror(r));
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    c.val("  entry", std::to_string(ai->ai_family) + " " + std::to_string(ai->ai_socktype) + " " +
                         std::to_string(ai->ai_protocol) + " " + describe(ai->ai_addr) + " len " +
                         std::to_string(ai->ai_addrlen) +
                         (ai->ai_canonname ? std::string(" canon ") + ai->ai_canonname : ""));
  }
  if (res) freeaddrinfo(res);
}

// host() records a hostent.
void host(Ctx& c, std::string_view label, const hostent* h) {
  if (!h) {
    c.val(label, "none");
    return;
  }
  std::string s = std::string("name ") + h->h_name + " type " + std::to_string(h->h_addrtype) +
                  " length " + std::to_string(h->h_length) + " aliases";
  for (char** a = h->h_aliases; a && *a; ++a) s += std::string(" ") + *a;
  s += " addresses";
  for (char** a = h->h_addr_list; a && *a; ++a) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(h->h_addrtype, *a, text, sizeof text);
    s += std::string(" ") + text;
  }
  c.val(label, s);
}

TEST(HookDiffDns, GetaddrinfoLocalhostAndLiterals) {
  expect_same([](Ctx& c) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    lookup(c, "localhost", "80", &hints);
    lookup(c, "127.0.0.1", "http", &hints);
    lookup(c, "localhost", nullptr, nullptr);
    hints = {};
    hints.ai_flags = AI_CANONNAME;
    lookup(c, "localhost", "443", &hints);
    hints = {};
    hints.ai_flags = AI_PASSIVE;
    hints.ai_socktype = SOCK_DGRAM;
    lookup(c, nullptr, "8080", &hints);
    hints = {};
    hints.ai_flags = AI_NUMERICHOST;
    lookup(c, "localhost", "80", &hints);
    lookup(c, "127.0.0.1", "80", &hints);
    hints = {};
    hints.ai_flags = AI_NUMERICSERV;
    lookup(c, "127.0.0.1", "http", &hints);
    lookup(c, "127.0.0.1", "no-such-service", nullptr);
    lookup(c, nullptr, nullptr, nullptr);
    hints = {};
    hints.ai_flags = 0x7fff0000;
    lookup(c, "localhost", "80", &hints);
    hints = {};
    hints.ai_family = 12345;
    lookup(c, "localhost", "80", &hints);
  });
}

TEST(HookDiffDns, GethostbynameAndGetnameinfo) {
  expect_same([](Ctx& c) {
    hostent he{}, *result = nullptr;
    char buf[2048] = {};
    int herr = -7;
    c.err("gethostbyname_r localhost",
          gethostbyname_r("localhost", &he, buf, sizeof buf, &result, &herr));
    host(c, "result", result);
    c.val("h_errno out", herr == -7 ? "untouched" : std::to_string(herr));
    result = nullptr;
    c.err("gethostbyname_r 127.0.0.1",
          gethostbyname_r("127.0.0.1", &he, buf, sizeof buf, &result, &herr));
    host(c, "result", result);
    char tiny[8] = {};
    result = &he;
    c.err("gethostbyname_r with an 8-byte buffer",
          gethostbyname_r("localhost", &he, tiny, sizeof tiny, &result, &herr));
    c.check("no result", result == nullptr);
    result = nullptr;
    c.err("gethostbyname2_r localhost AF_INET",
          gethostbyname2_r("localhost", AF_INET, &he, buf, sizeof buf, &result, &herr));
    host(c, "result", result);
    host(c, "gethostbyname localhost", gethostbyname("localhost"));
    host(c, "gethostbyname 127.0.0.1", gethostbyname("127.0.0.1"));
    sockaddr_in sa = loopback(80);
    char name[NI_MAXHOST] = {}, serv[NI_MAXSERV] = {};
    int r = getnameinfo(reinterpret_cast<sockaddr*>(&sa), sizeof sa, name, sizeof name, serv,
                        sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
    c.val("getnameinfo numeric", r == 0 ? std::string(name) + " " + serv : gai_strerror(r));
    r = getnameinfo(reinterpret_cast<sockaddr*>(&sa), sizeof sa, name, sizeof name, serv,
                    sizeof serv, 0);
    c.val("getnameinfo", r == 0 ? std::string(name) + " " + serv : gai_strerror(r));
    r = getnameinfo(reinterpret_cast<sockaddr*>(&sa), 3, name, sizeof name, nullptr, 0, 0);
    c.val("getnameinfo with a short address", r == 0 ? "0" : gai_strerror(r));
  });
}

// Many coroutines resolving at once each get the plain answer.
TEST(HookDiffDns, ConcurrentLookups) {
  expect_same([](Ctx& c) {
    constexpr int kLookups = 24;
    std::vector<std::string> got(kLookups);
    for (int i = 0; i < kLookups; ++i) {
      c.peer([&got, i] {
        addrinfo hints{};
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        std::string port = std::to_string(1000 + i);
        int r = getaddrinfo(i % 2 ? "localhost" : "127.0.0.1", port.c_str(), &hints, &res);
        got[i] = r == 0 && res ? describe(res->ai_addr) : gai_strerror(r);
        if (res) freeaddrinfo(res);
      });
    }
    c.join_peers();
    for (int i = 0; i < kLookups; ++i) c.val("lookup " + std::to_string(i), got[i]);
  });
}

}  // namespace
}  // namespace coil::test::hook
