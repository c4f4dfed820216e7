// coil/net.hpp and coil/process.hpp: listen_tcp()'s errors and SO_REUSEPORT
// sharing, and fork_workers()'s statuses and signal forwarding.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "coil/net.hpp"
#include "coil/process.hpp"

namespace coil {
namespace {

using namespace std::chrono_literals;

TEST(ListenTcp, BadAddressesAreRefusedByName) {
  EXPECT_THROW(listen_tcp("localhost", 0), std::invalid_argument);  // not a literal
  EXPECT_THROW(listen_tcp("127.0.0.1", 70000), std::invalid_argument);
  EXPECT_THROW(listen_tcp("127.0.0.1", -1), std::invalid_argument);
  try {
    listen_tcp("192.0.2.1", 0);  // TEST-NET-1: not an address of this machine
    ADD_FAILURE() << "bound an address this machine does not have";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRNOTAVAIL);
    EXPECT_NE(std::string(e.what()).find("192.0.2.1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bind"), std::string::npos) << e.what();
  }
}

TEST(ListenTcp, ReusePortLetsSeveralSocketsListenOnOnePort) {
  int a = listen_tcp("127.0.0.1", 0, {.reuse_port = true});
  int port = local_port(a);
  ASSERT_GT(port, 0);
  int b = listen_tcp("127.0.0.1", port, {.reuse_port = true});
  EXPECT_EQ(local_port(b), port);
  try {
    listen_tcp("127.0.0.1", port);  // without SO_REUSEPORT: taken
    ADD_FAILURE() << "a second listener without SO_REUSEPORT";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
  int v6 = -1;
  try {
    v6 = listen_tcp("::1", 0);
    EXPECT_GT(local_port(v6), 0);
  } catch (const std::system_error&) {  // a machine without IPv6 loopback
  }
  for (int fd : {a, b, v6}) {
    if (fd >= 0) close(fd);
  }
}

TEST(ForkWorkers, TheFirstFailingStatusIsReturned) {
  EXPECT_EQ(fork_workers(3, [](int) { return 0; }), 0);
  EXPECT_EQ(fork_workers(3, [](int i) { return i == 0 ? 0 : 10 + i; }), 11);
  EXPECT_EQ(fork_workers(2,
                         [](int i) -> int {
                           if (i == 1) throw std::runtime_error("worker failed");
                           return 0;
                         }),
            1);
  EXPECT_EQ(fork_workers(1,
                         [](int) -> int {
                           raise(SIGKILL);
                           return 0;
                         }),
            128 + SIGKILL);
  EXPECT_THROW(fork_workers(0, [](int) { return 0; }), std::invalid_argument);
}

TEST(ForkWorkers, SigtermToTheParentReachesEveryWorker) {
  std::thread nudge([] {
    std::this_thread::sleep_for(200ms);
    kill(getpid(), SIGTERM);
  });
  auto start = std::chrono::steady_clock::now();
  int status = fork_workers(3, [](int) {
    std::this_thread::sleep_for(20s);  // ended by the forwarded SIGTERM
    return 0;
  });
  nudge.join();
  EXPECT_EQ(status, 128 + SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  struct sigaction now {};
  sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL) << "the parent's own SIGTERM action is put back";
}

}  // namespace
}  // namespace coil
