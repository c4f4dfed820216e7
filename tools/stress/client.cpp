// One client process: the dialer, the connection coroutines and the phases of a run.
//
// A client's coroutines all run on one scheduler on one thread, so the counters in its Stats need
// no locks; with --threads a process runs one client per worker of a coil::Runtime. The main
// coroutine dials, waits for the connects to end, sleeps through the steady window and then stops
// the connections; a publisher coroutine sends progress snapshots.
#include "client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/intrusive/list.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "coil/cond_var.hpp"
#include "coil/mutex.hpp"
#include "coil/runtime.hpp"
#include "coil/scheduler.hpp"
#include "coil/semaphore.hpp"
#include "pattern.hpp"
#include "report_channel.hpp"
#include "stats.hpp"
#include "stop_signal.hpp"
#include "system_info.hpp"
#include "token_bucket.hpp"

namespace coil_stress {

namespace {

using namespace std::chrono_literals;
namespace bi = boost::intrusive;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kConnStack = 32 * 1024;  // a parked connection touches one 4 KiB page
constexpr auto kPublishEvery = 250ms;
constexpr auto kPollStep = 10ms;    // how often the main coroutine looks at a counter it waits on
constexpr auto kCheckStep = 100ms;  // the longest a wait goes without looking at the stop flag
constexpr auto kConnectGrace = 1s;  // past the connect deadline, for connects to report back
constexpr auto kCloseGrace = 2s;    // after shutdown(), for connections to finish
constexpr double kBurstSeconds = 0.05;  // the token bucket saves up to 50 ms of --rate

std::uint64_t micros_between(Clock::time_point from, Clock::time_point to) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
  return us > 0 ? static_cast<std::uint64_t>(us) : 0;
}

std::uint64_t nanos_between(Clock::time_point from, Clock::time_point to) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
  return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// set_timeout() sets SO_SNDTIMEO or SO_RCVTIMEO, which the hooks apply to the waits they make.
bool set_timeout(int fd, int option, Clock::duration d) {
  auto us = std::max<std::int64_t>(
      1000, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  return setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv) == 0;
}

// Conn is an open connection, on its coroutine's stack, listed so that stop() can reach it.
struct Conn : bi::list_base_hook<bi::link_mode<bi::auto_unlink>> {
  int fd = -1;
};

class Client {
 public:
  Client(const Options& opts, const Share& share, int report_fd)
      : opts_(opts), share_(share), report_fd_(report_fd), pending_(opts.max_pending) {
    stats_.requested = share.count;
    stats_.processes = share.thread == 0 ? 1 : 0;  // thread 0 speaks for its process
  }

  int run();

 private:
  void dial();
  bool dial_slot(TokenBucket& bucket);
  void connection(std::uint64_t index);
  int open_connection(std::uint64_t index);
  void exchange(int fd, std::uint64_t index);
  bool wait_turn(Clock::time_point next);
  bool read_echo(int fd, unsigned char* buf, Clock::time_point deadline, int& err);
  void wait_for_connects();
  void steady();
  void stop();
  void publish_loop();
  void sample_memory();
  bool ending() const { return stopping_ || stop_requested() || parent_gone_; }

  const Options& opts_;
  Share share_;
  int report_fd_;
  Stats stats_;
  Clock::time_point start_;
  Clock::time_point connect_deadline_;
  coil::Semaphore pending_;       // connects in flight: --max-pending
  std::uint64_t connecting_ = 0;  // connection coroutines whose connect has not ended
  bool stopping_ = false;         // the steady window is over: finish the echo and close
  bool memory_frozen_ = false;    // memory was sampled with every connection open
  bool done_ = false;             // the publisher stops
  bool parent_gone_ = false;      // the report pipe broke
  coil::Mutex mu_;
  coil::CondVar wake_;  // connections waiting for their next message; woken by stop()
  bi::list<Conn, bi::constant_time_size<false>> conns_;
};

int Client::run() {
  start_ = Clock::now();
  connect_deadline_ = start_ + seconds(opts_.connect_timeout);
  auto publisher = coil::spawn([this] { publish_loop(); }, coil::SpawnOptions{.name = "publish"});
  dial();
  wait_for_connects();
  stats_.connect_phase_ns = nanos_between(start_, Clock::now());
  steady();
  stop();
  done_ = true;
  publisher.join();
  stats_.finished = true;
  stats_.interrupted = stop_requested() || parent_gone_;
  if (!send_stats(report_fd_, stats_)) {
    std::fprintf(stderr, "coil-stress: process %d could not send its report: %s\n", share_.process,
                 std::strerror(errno));
    return 1;
  }
  return 0;
}

// dial() starts a coroutine per connection of the share, as fast as --rate and --max-pending let
// it, until the share is done or the connect phase ends.
void Client::dial() {
  double rate = opts_.rate / opts_.procs;
  TokenBucket bucket(rate, rate * kBurstSeconds, Clock::now());
  for (std::uint64_t k = 0; k < share_.count; ++k) {
    if (!dial_slot(bucket)) {
      stats_.add_error(Phase::kDial, stop_requested() ? EINTR : ETIMEDOUT, share_.count - k);
      return;
    }
    ++stats_.attempted;
    ++connecting_;
    std::uint64_t index = share_.first + k;
    try {
      coil::go([this, index] { connection(index); },
               coil::SpawnOptions{.name = "conn", .stack_size = kConnStack});
    } catch (const coil::SpawnError& e) {
      stats_.add_error(Phase::kSpawn, e.code().value());
      --connecting_;
      pending_.release();
    }
  }
}

// dial_slot() waits for a token of --rate and a free --max-pending slot; false if the connect
// phase ends or the run is interrupted first.
bool Client::dial_slot(TokenBucket& bucket) {
  for (;;) {  // ends by the connect deadline at the latest
    if (stop_requested() || parent_gone_) return false;
    auto now = Clock::now();
    if (now >= connect_deadline_) return false;
    auto wait = bucket.take(now);
    if (wait == Clock::duration::zero()) break;
    coil::sleep_for(std::min<Clock::duration>(wait, kCheckStep));
  }
  for (;;) {
    if (stop_requested() || parent_gone_) return false;
    auto now = Clock::now();
    if (now >= connect_deadline_) return false;
    if (pending_.try_acquire_until(std::min(connect_deadline_, now + kCheckStep))) return true;
  }
}

// connection() is one connection's coroutine: connect, echo until stop(), close.
void Client::connection(std::uint64_t index) {
  int fd = -1;
  try {
    fd = open_connection(index);
  } catch (const std::bad_alloc&) {
    stats_.add_error(Phase::kSpawn, ENOMEM);
  }
  --connecting_;
  pending_.release();
  if (fd < 0) return;
  ++stats_.established;
  stats_.peak_open = std::max(stats_.peak_open, ++stats_.open);
  Conn conn;
  conn.fd = fd;
  conns_.push_back(conn);
  try {
    exchange(fd, index);
  } catch (const std::bad_alloc&) {
    stats_.add_error(Phase::kSpawn, ENOMEM);
  }
  conn.unlink();
  close(fd);
  --stats_.open;
}

// open_connection() returns a socket connected to the index-th (port, source) pair, or -1 after
// counting the error. Ports go round-robin; the source address moves on after each round.
int Client::open_connection(std::uint64_t index) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    stats_.add_error(Phase::kSocket, errno);
    return -1;
  }
  auto fail = [&](Phase phase, int err) {
    stats_.add_error(phase, err);
    close(fd);
    return -1;
  };
  if (!opts_.src.empty()) {
    // The kernel picks the port at connect() time from the whole four-tuple, so each source
    // address gets its own ephemeral port range per server port.
    int one = 1;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0)
      return fail(Phase::kBind, errno);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr =
        htonl(opts_.src_first +
              static_cast<std::uint32_t>(index / opts_.port_count() % opts_.src_count()));
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
      return fail(Phase::kBind, errno);
  }
  auto now = Clock::now();
  if (now >= connect_deadline_) return fail(Phase::kConnect, ETIMEDOUT);
  // SO_SNDTIMEO bounds the hooked connect() by the connect phase's deadline.
  if (!set_timeout(fd, SO_SNDTIMEO, connect_deadline_ - now)) return fail(Phase::kConnect, errno);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(opts_.host_addr);
  dst.sin_port = htons(static_cast<std::uint16_t>(opts_.first_port + index % opts_.port_count()));
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    int err = errno;
    // A blocking connect that runs out of SO_SNDTIMEO says EINPROGRESS: the connect timed out.
    return fail(Phase::kConnect, err == EINPROGRESS || err == EAGAIN ? ETIMEDOUT : err);
  }
  stats_.connect_us.record(micros_between(now, Clock::now()));
  auto echo_timeout = seconds(opts_.echo_timeout);
  if (!set_timeout(fd, SO_SNDTIMEO, echo_timeout) || !set_timeout(fd, SO_RCVTIMEO, echo_timeout))
    return fail(Phase::kConnect, errno);
  return fd;
}

// exchange() sends a message every --interval and reads its echo, until stop() or an error.
void Client::exchange(int fd, std::uint64_t index) {
  const std::size_t size = opts_.message_size;
  std::vector<unsigned char> out(size);
  std::vector<unsigned char> in(size);
  fill_pattern(out.data(), size, index, 0);
  const auto interval = seconds(opts_.interval);
  const auto echo_timeout = seconds(opts_.echo_timeout);
  // The first message waits a fraction of the interval that differs between connections (the
  // golden ratio spreads them evenly), so connections opened together do not ping together.
  double phase = std::fmod(static_cast<double>(index) * 0.6180339887498949, 1.0);
  auto next = Clock::now() + seconds(opts_.interval * phase);
  for (std::uint64_t seq = 0; wait_turn(next); ++seq) {  // ends at stop() or the first error
    if (opts_.verify && seq > 0) fill_pattern(out.data(), size, index, seq);
    auto sent_at = Clock::now();
    ssize_t n = send(fd, out.data(), size, MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(size)) {
      int err = n >= 0 || errno == EAGAIN ? ETIMEDOUT : errno;  // a short write ran out of time
      stats_.add_error(Phase::kSend, err);
      return;
    }
    ++stats_.sent;
    int err = 0;
    if (!read_echo(fd, in.data(), sent_at + echo_timeout, err)) {
      ++stats_.lost;
      stats_.add_error(Phase::kRecv, err);
      return;
    }
    auto now = Clock::now();
    stats_.rtt_us.record(micros_between(sent_at, now));
    ++stats_.echoed;
    if (opts_.verify) {
      if (std::memcmp(in.data(), out.data(), size) != 0) {
        ++stats_.corrupt;
        stats_.add_error(Phase::kRecv, kErrCorrupt);
        return;
      }
      ++stats_.verified;
    }
    next = std::max(next + interval, now);  // a connection that fell behind does not burst
  }
}

// wait_turn() waits until next, or returns false at once when the run is ending.
bool Client::wait_turn(Clock::time_point next) {
  if (ending()) return false;
  if (opts_.interval <= 0) return true;
  std::unique_lock lock(mu_);
  wake_.wait_until(lock, next, [this] { return ending(); });
  return !ending();
}

// read_echo() reads the message_size bytes of an echo into buf by deadline. On failure err is the
// errno, ETIMEDOUT or kErrEof.
bool Client::read_echo(int fd, unsigned char* buf, Clock::time_point deadline, int& err) {
  std::size_t size = opts_.message_size;
  std::size_t got = 0;
  while (got < size) {  // each pass reads a byte or more, or ends by deadline or error
    ssize_t n = read(fd, buf + got, size - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0) {
      err = kErrEof;
      return false;
    } else if (errno != EINTR) {
      err = errno == EAGAIN ? ETIMEDOUT : errno;  // SO_RCVTIMEO ran out
      return false;
    }
    if (got < size && Clock::now() >= deadline) {
      err = ETIMEDOUT;
      return false;
    }
  }
  return true;
}

// wait_for_connects() returns when every connect the dialer started has ended, or a grace period
// after the connect deadline (the hooked connect honours SO_SNDTIMEO, so it should not come).
void Client::wait_for_connects() {
  auto limit = connect_deadline_ + kConnectGrace;
  while (connecting_ > 0 && Clock::now() < limit) coil::sleep_for(kPollStep);
}

// steady() lets the connections echo for --duration seconds, unless none is open.
void Client::steady() {
  if (stats_.open == 0 || opts_.duration <= 0 || stop_requested()) return;
  auto begin = Clock::now();
  auto end = begin + seconds(opts_.duration);
  std::uint64_t echoed_before = stats_.echoed;
  for (auto now = begin; now < end && !stop_requested() && !parent_gone_; now = Clock::now())
    coil::sleep_for(std::min<Clock::duration>(end - now, kCheckStep));
  stats_.steady_ns = nanos_between(begin, Clock::now());
  stats_.steady_echoed = stats_.echoed - echoed_before;
}

// stop() samples memory with everything open, then lets every connection finish its echo in
// flight and close; connections that do not within the echo timeout are shut down.
void Client::stop() {
  sample_memory();
  SocketMemory sockets = read_socket_memory();
  stats_.tcp_mem_bytes = sockets.tcp_mem_bytes;
  stats_.tcp_inuse = sockets.tcp_inuse;
  memory_frozen_ = true;
  stopping_ = true;
  wake_.notify_all();
  auto limit = Clock::now() + seconds(opts_.echo_timeout) + kConnectGrace;
  while (stats_.open > 0 && Clock::now() < limit) coil::sleep_for(kPollStep);
  if (stats_.open == 0) return;
  for (Conn& conn : conns_) shutdown(conn.fd, SHUT_RDWR);  // a blocked read() sees EOF
  limit = Clock::now() + kCloseGrace;
  while (stats_.open > 0 && Clock::now() < limit) coil::sleep_for(kPollStep);
}

// publish_loop() sends a snapshot every kPublishEvery until the run is done.
void Client::publish_loop() {
  auto next = Clock::now() + kPublishEvery;
  while (!done_) {  // done_ is set by run() within a bounded time
    coil::sleep_for(std::min<Clock::duration>(kPollStep * 5, next - Clock::now()));
    if (Clock::now() < next || done_) continue;
    next += kPublishEvery;
    if (!memory_frozen_) sample_memory();
    if (!parent_gone_ && !send_stats(report_fd_, stats_)) parent_gone_ = true;
  }
}

void Client::sample_memory() {
  if (share_.thread != 0) return;  // the process's memory, counted once
  ProcessMemory mem = read_process_memory();
  stats_.rss_bytes = mem.rss_bytes;
  stats_.hwm_bytes = mem.hwm_bytes;
}

}  // namespace

int run_client(const Options& opts, const Share& share, int report_fd) {
  // The client outlives the scheduler: coil::run() returns only once every coroutine, each of
  // which uses the client, has finished.
  Client client(opts, share, report_fd);
  try {
    return coil::run([&] { return client.run(); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coil-stress: process %d failed: %s\n", share.process, e.what());
    return 1;
  }
}

int run_clients(const Options& opts, const std::vector<Share>& shares,
                const std::vector<int>& report_fds) {
  if (shares.size() == 1) return run_client(opts, shares.front(), report_fds.front());
  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t i = 0; i < shares.size(); ++i) {
    clients.push_back(std::make_unique<Client>(opts, shares[i], report_fds[i]));
  }
  std::atomic<int> status{0};
  try {
    // Each client on its own worker; their Stats are their own, so they share nothing.
    coil::Runtime runtime({.workers = static_cast<int>(shares.size())});
    for (std::size_t i = 0; i < clients.size(); ++i) {
      runtime.go_on(static_cast<int>(i), [&status, &client = *clients[i]] {
        if (int s = client.run(); s != 0) status = s;
      });
    }
    runtime.wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coil-stress: process of client %d failed: %s\n", shares.front().process,
                 e.what());
    return 1;
  }
  return status;
}

}  // namespace coil_stress
