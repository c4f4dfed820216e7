// echo_load: a closed-loop load generator for toupper echo servers; the ruler of echo_ratio.sh.
//
// It opens N TCP connections to 127.0.0.1:PORT. Each connection sends a message (64 bytes of
// lower-case letters by default), waits for the whole upper-cased echo, checks it byte for byte
// and sends the next: one message in flight per connection. After a warm-up it counts, for a
// measured duration, the echoes that complete and how long each took from its send to the receive
// that completed it, then prints one line:
//
//   connections=N msgs=M seconds=S msgs_per_sec=R p50_us=A p90_us=L p99_us=B errors=0 cpu_pct=C
//   wait_pct=W [server_cpu_pct=D server_wait_pct=V] engine=uring|epoll
//
// cpu_pct is this program's CPU use over the window and wait_pct its time runnable but waiting
// for a CPU (from /proc schedstat); with --server-pid, the same for the server. A wait well above
// zero means another process shared the CPU, and the figures are not clean.
//
// It uses no coil and runs in one thread, so that it costs the server's CPU nothing and as few
// cycles per message as it can: with --engine uring (the default; see uring.hpp for why) a
// message is a SEND and a RECV queued on io_uring and the thread enters the kernel once per batch
// of completions; with --engine epoll (also the fallback when io_uring is unavailable) it is one
// write(), one read() and a share of one level-triggered epoll_wait(). Connections are spread
// over source addresses 127.0.0.1..K (--sources; bound with IP_BIND_ADDRESS_NO_PORT), one per
// 5000 connections by default, so that ephemeral ports do not run out.
//
// It exits 1 on any error or wrong echo (and says which), 2 on usage errors or when N
// connections do not fit the file descriptor limit (the soft RLIMIT_NOFILE is raised to the hard
// one first).
//
// With --hold, the measured window is made exact for syscall counting: after the warm-up the
// connections finish their messages in flight and the program prints `ready` and waits for
// SIGUSR1. It then runs the measured duration, lets the messages in flight finish, prints the
// result line (msgs counts every message sent after SIGUSR1) and `done`, and waits for a second
// SIGUSR1 before it closes the connections and exits.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "uring.hpp"

namespace {

constexpr int kMaxEvents = 1024;
constexpr int kSpareFds = 16;      // stdio, epoll and what the C library may open
constexpr int kStallSeconds = 10;  // no echo at all for this long is an error
constexpr int kMaxMessage = 64 * 1024;

struct Options {
  int port = 0;
  int connections = 100;
  int size = 64;
  double warmup = 1.0;
  double duration = 5.0;
  int sources = 0;  // 0: one 127.0.0.x source address per 5000 connections
  int server_pid = 0;
  bool hold = false;
  std::string engine = "uring";
};

// Connection is one client socket with its message in flight.
struct Connection {
  int fd = -1;
  std::uint32_t seq = 0;     // which message is in flight (selects its bytes)
  int got = 0;               // bytes of its echo received so far
  bool in_flight = false;    // a message was sent and its echo is not complete
  std::int64_t sent_ns = 0;  // when it was written
};

enum class Phase { kWarmup, kMeasure, kDrainBeforeHold, kDrainAfterMeasure, kDone };

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Sched holds a process's time on a CPU and its time runnable but waiting for one, in seconds.
struct Sched {
  double cpu = 0;
  double wait = 0;
};

// sched_of() sums /proc/PID/task/*/schedstat (PID "self": this process): the run time and the
// run-queue wait of every thread. A wait well above zero means something else had the CPU.
Sched sched_of(const std::string& pid) {
  Sched total;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + pid + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    double run_ns = 0, wait_ns = 0;
    if (in >> run_ns >> wait_ns) {
      total.cpu += run_ns / 1e9;
      total.wait += wait_ns / 1e9;
    }
  }
  return total;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "echo_load: %s\n", what.c_str());
  std::exit(1);
}

// raise_fd_limit() lifts the soft RLIMIT_NOFILE to the hard one; exits 2 if n does not fit.
void raise_fd_limit(int n) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) fail(std::string("getrlimit: ") + strerror(errno));
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(n) + kSpareFds > lim.rlim_cur) {
    std::fprintf(stderr,
                 "echo_load: %d connections need %d file descriptors, but RLIMIT_NOFILE allows "
                 "%llu (hard limit %llu); raise the hard limit (ulimit -Hn, limits.conf) or use "
                 "fewer connections\n",
                 n, n + kSpareFds, static_cast<unsigned long long>(lim.rlim_cur),
                 static_cast<unsigned long long>(lim.rlim_max));
    std::exit(2);
  }
}

// connect_one() opens connection i from source address 127.0.0.(1 + i % sources).
int connect_one(const Options& opts, int i, int sources) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(std::string("socket: ") + strerror(errno));
  if (sources > 1) {
    // Only the address is bound here; the port is chosen at connect() for the whole 4-tuple,
    // so each source address has the full ephemeral port range for this server.
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + static_cast<std::uint32_t>(i % sources));
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
      fail("bind source 127.0.0." + std::to_string(1 + i % sources) + ": " + strerror(errno));
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(opts.port));
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    if (errno == EINTR) continue;
    std::string hint = errno == EADDRNOTAVAIL
                           ? " (out of ephemeral ports: use more --sources or widen "
                             "net.ipv4.ip_local_port_range)"
                           : "";
    fail("connection " + std::to_string(i) + ": connect to 127.0.0.1:" + std::to_string(opts.port) +
         ": " + strerror(errno) + hint);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Io is how the messages travel: the epoll engine or the io_uring engine.
class Io {
 public:
  virtual ~Io() = default;
  // add() starts watching connection i (socket fd) for echoes.
  virtual void add(int i, int fd) = 0;
  // send() writes msg on connection i and (io_uring) queues the receive of its echo.
  virtual void send(int i, const std::string& msg) = 0;
  // receive_more() asks for the rest of an echo of which got bytes of size came.
  virtual void receive_more(int i, int got) = 0;
  // wait() waits up to timeout_ms for echo bytes and hands each read to Load::deliver(); returns
  // false if the time passed with nothing done.
  virtual bool wait(int timeout_ms) = 0;
};

// Load drives the connections through the phases and keeps the measurements.
class Load {
 public:
  explicit Load(const Options& opts) : opts_(opts), conns_(opts.connections) {
    // Message k of a connection is letter (k + j) % 26 at byte j: a stale or reordered echo
    // does not match. expected_ holds the upper-case echoes of the 26 distinct messages.
    for (int k = 0; k < 26; ++k) {
      std::string msg, echo;
      for (int j = 0; j < opts.size; ++j) {
        msg += static_cast<char>('a' + (k + j) % 26);
        echo += static_cast<char>('A' + (k + j) % 26);
      }
      messages_.push_back(msg);
      expected_.push_back(echo);
    }
    latencies_.reserve(1 << 20);
  }

  int run();

  // deliver() takes n bytes of the echo on connection i (n <= 0: what read() returned); the
  // engines call it from wait().
  void deliver(int i, const char* data, ssize_t n, int err);

  const Options& options() const { return opts_; }

 private:
  void send(int i, std::int64_t now);
  void wait_for_usr1(const char* announce);
  void report(std::int64_t start, std::int64_t end, const Sched& self0, const Sched& server0);

  const Options& opts_;
  std::vector<Connection> conns_;
  std::vector<std::string> messages_, expected_;
  std::vector<std::uint32_t> latencies_;  // ns, of the echoes completed in the window
  std::unique_ptr<Io> io_;
  std::string engine_;
  Phase phase_ = Phase::kWarmup;
  std::int64_t window_start_ = 0, window_end_ = 0;
  std::uint64_t msgs_ = 0;
  int in_flight_ = 0;
};

// EpollIo: level-triggered epoll; per message one write(), one read() and a share of one
// epoll_wait().
class EpollIo final : public Io {
 public:
  explicit EpollIo(Load& load) : load_(load), buf_(load.options().size) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) fail(std::string("epoll_create1: ") + strerror(errno));
  }
  ~EpollIo() override { close(epfd_); }

  void add(int i, int fd) override {
    fds_.push_back(fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
      fail(std::string("epoll_ctl: ") + strerror(errno));
  }

  void send(int i, const std::string& msg) override {
    ssize_t n = write(fds_[i], msg.data(), msg.size());
    if (n != static_cast<ssize_t>(msg.size()))
      fail("write: " + (n < 0 ? std::string(strerror(errno))
                              : "short write of " + std::to_string(n) + " bytes"));
  }

  void receive_more(int, int) override {}  // level-triggered: epoll reports the rest

  bool wait(int timeout_ms) override {
    int n = epoll_wait(epfd_, events_, kMaxEvents, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return true;
      fail(std::string("epoll_wait: ") + strerror(errno));
    }
    for (int k = 0; k < n; ++k) {
      int i = static_cast<int>(events_[k].data.u32);
      // At most one message's worth: nothing more is due, and more would be a wrong echo.
      ssize_t r = read(fds_[i], buf_.data(), buf_.size());
      load_.deliver(i, buf_.data(), r, r < 0 ? errno : 0);
    }
    return n > 0;
  }

 private:
  Load& load_;
  std::vector<int> fds_;
  std::vector<char> buf_;
  int epfd_ = -1;
  epoll_event events_[kMaxEvents];
};

// UringIo: io_uring; each message is a SEND and a RECV queued together, and the thread enters
// the kernel once per batch of completions.
class UringIo final : public Io {
 public:
  explicit UringIo(Load& load, int connections)
      : load_(load),
        size_(load.options().size),
        bufs_(static_cast<std::size_t>(connections) * static_cast<std::size_t>(size_)),
        got_(static_cast<std::size_t>(connections)) {
    // Up to a SEND and a RECV per connection can be in flight: the CQ has room for both (and
    // the kernel keeps any overflow). prepare() submits early when the SQ fills up.
    unsigned cq = 2 * kSqEntries;
    while (cq < 2u * static_cast<unsigned>(connections) + 64 && cq < 65536) cq *= 2;
    open_error_ = ring_.open(kSqEntries, cq);
  }

  // open_error() is 0 if the ring was set up, else -errno (io_uring missing or forbidden).
  int open_error() const { return open_error_; }

  void add(int, int fd) override { fds_.push_back(fd); }

  void send(int i, const std::string& msg) override {
    check(ring_.prepare(IORING_OP_SEND, fds_[i], msg.data(), static_cast<unsigned>(msg.size()),
                        tag(i, kSend)));
    receive_more(i, 0);
  }

  void receive_more(int i, int got) override {
    check(ring_.prepare(IORING_OP_RECV, fds_[i], buffer(i) + got,
                        static_cast<unsigned>(size_ - got), tag(i, kRecv)));
    got_[i] = got;
  }

  bool wait(int timeout_ms) override {
    timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    int r = ring_.enter(1, &timeout);
    if (r == -ETIME) return false;
    check(r);
    ring_.for_each_completion([&](std::uint64_t user_data, int res) {
      int i = static_cast<int>(user_data >> 1);
      if ((user_data & 1) == kSend) {
        if (res != size_)
          fail("send: " + (res < 0 ? std::string(strerror(-res))
                                   : "short send of " + std::to_string(res) + " bytes"));
        return;
      }
      load_.deliver(i, buffer(i) + got_[i], res < 0 ? -1 : res, res < 0 ? -res : 0);
    });
    return true;
  }

 private:
  static constexpr unsigned kSqEntries = 1024;
  static constexpr std::uint64_t kSend = 0, kRecv = 1;
  static std::uint64_t tag(int i, std::uint64_t op) {
    return static_cast<std::uint64_t>(i) << 1 | op;
  }
  char* buffer(int i) { return bufs_.data() + static_cast<std::size_t>(i) * size_; }
  void check(int r) {
    if (r < 0) fail(std::string("io_uring_enter: ") + strerror(-r));
  }

  Load& load_;
  int size_;
  std::vector<char> bufs_;  // each connection's echo lands in its own slice
  std::vector<int> fds_;
  int open_error_ = 0;
  std::vector<int> got_;  // bytes of its echo each connection had when its RECV was queued
  echo_load::Ring ring_;
};

void Load::send(int i, std::int64_t now) {
  Connection& c = conns_[i];
  io_->send(i, messages_[c.seq % 26]);
  c.sent_ns = now;
  c.got = 0;
  c.in_flight = true;
  ++in_flight_;
}

void Load::deliver(int i, const char* data, ssize_t n, int err) {
  Connection& c = conns_[i];
  if (n <= 0) {
    if (n < 0 && (err == EAGAIN || err == EINTR)) {
      io_->receive_more(i, c.got);
      return;
    }
    fail(n == 0 ? "the server closed a connection" : std::string("read: ") + strerror(err));
  }
  if (!c.in_flight) fail("the server sent bytes nobody asked for");
  const std::string& want = expected_[c.seq % 26];
  if (c.got + n > opts_.size ||
      std::memcmp(data, want.data() + c.got, static_cast<std::size_t>(n)) != 0)
    fail("wrong echo: expected \"" + want.substr(static_cast<std::size_t>(c.got)) + "\", got \"" +
         std::string(data, static_cast<std::size_t>(n)) + "\"");
  c.got += static_cast<int>(n);
  if (c.got < opts_.size) {
    io_->receive_more(i, c.got);
    return;
  }
  std::int64_t now = now_ns();
  c.in_flight = false;
  --in_flight_;
  ++c.seq;
  bool counted = phase_ == Phase::kDrainAfterMeasure ||
                 (phase_ == Phase::kMeasure && (opts_.hold || now <= window_end_));
  if (counted) {
    ++msgs_;
    latencies_.push_back(
        static_cast<std::uint32_t>(std::min<std::int64_t>(now - c.sent_ns, UINT32_MAX)));
  }
  if (phase_ == Phase::kWarmup || phase_ == Phase::kMeasure) send(i, now);
}

void Load::wait_for_usr1(const char* announce) {
  std::printf("%s\n", announce);
  std::fflush(stdout);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  int sig = 0;
  while (sigwait(&set, &sig) != 0 || sig != SIGUSR1) {
  }
}

int Load::run() {
  int sources = opts_.sources > 0 ? opts_.sources : 1 + (opts_.connections - 1) / 5000;
  engine_ = opts_.engine;
  if (engine_ == "uring") {
    auto uring = std::make_unique<UringIo>(*this, opts_.connections);
    if (int r = uring->open_error(); r < 0) {
      std::fprintf(stderr, "echo_load: io_uring_setup: %s; using epoll (engine=epoll)\n",
                   strerror(-r));
      engine_ = "epoll";
    } else {
      io_ = std::move(uring);
    }
  }
  if (!io_) io_ = std::make_unique<EpollIo>(*this);
  for (int i = 0; i < opts_.connections; ++i) {
    conns_[i].fd = connect_one(opts_, i, sources);
    io_->add(i, conns_[i].fd);
  }

  std::int64_t now = now_ns();
  std::int64_t warmup_end = now + static_cast<std::int64_t>(opts_.warmup * 1e9);
  Sched self0, server0;
  auto start_window = [&](std::int64_t t) {
    phase_ = Phase::kMeasure;
    window_start_ = t;
    window_end_ = t + static_cast<std::int64_t>(opts_.duration * 1e9);
    self0 = sched_of("self");
    if (opts_.server_pid > 0) server0 = sched_of(std::to_string(opts_.server_pid));
  };
  for (int i = 0; i < opts_.connections; ++i) send(i, now);

  while (phase_ != Phase::kDone) {
    if (!io_->wait(kStallSeconds * 1000) && in_flight_ > 0)
      fail("no echo for " + std::to_string(kStallSeconds) + " s on " + std::to_string(in_flight_) +
           " connections");
    now = now_ns();
    switch (phase_) {
      case Phase::kWarmup:
        if (now < warmup_end) break;
        if (opts_.hold) {
          phase_ = Phase::kDrainBeforeHold;
        } else {
          start_window(now);
        }
        break;
      case Phase::kDrainBeforeHold:
        if (in_flight_ > 0) break;
        wait_for_usr1("ready");
        now = now_ns();
        start_window(now);
        for (int i = 0; i < opts_.connections; ++i) send(i, now);
        break;
      case Phase::kMeasure:
        if (now < window_end_) break;
        if (opts_.hold) {
          phase_ = Phase::kDrainAfterMeasure;
        } else {
          report(window_start_, window_end_, self0, server0);
          phase_ = Phase::kDone;
        }
        break;
      case Phase::kDrainAfterMeasure:
        if (in_flight_ > 0) break;
        report(window_start_, now, self0, server0);
        wait_for_usr1("done");
        phase_ = Phase::kDone;
        break;
      case Phase::kDone:
        break;
    }
  }
  io_.reset();
  for (auto& c : conns_) close(c.fd);
  return 0;
}

void Load::report(std::int64_t start, std::int64_t end, const Sched& self0, const Sched& server0) {
  double seconds = static_cast<double>(end - start) / 1e9;
  Sched self = sched_of("self");
  auto percentile = [&](double p) {
    if (latencies_.empty()) return 0.0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(latencies_.size() - 1));
    std::nth_element(latencies_.begin(), latencies_.begin() + static_cast<std::ptrdiff_t>(k),
                     latencies_.end());
    return latencies_[k] / 1e3;
  };
  double p50 = percentile(0.50), p90 = percentile(0.90), p99 = percentile(0.99);
  std::printf(
      "connections=%d msgs=%llu seconds=%.3f msgs_per_sec=%.0f p50_us=%.1f p90_us=%.1f "
      "p99_us=%.1f errors=0 cpu_pct=%.1f wait_pct=%.1f",
      opts_.connections, static_cast<unsigned long long>(msgs_), seconds,
      static_cast<double>(msgs_) / seconds, p50, p90, p99, 100 * (self.cpu - self0.cpu) / seconds,
      100 * (self.wait - self0.wait) / seconds);
  if (opts_.server_pid > 0) {
    Sched server = sched_of(std::to_string(opts_.server_pid));
    std::printf(" server_cpu_pct=%.1f server_wait_pct=%.1f",
                100 * (server.cpu - server0.cpu) / seconds,
                100 * (server.wait - server0.wait) / seconds);
  }
  std::printf(" engine=%s\n", engine_.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"echo_load: closed-loop load for a toupper echo server on 127.0.0.1"};
  Options opts;
  app.add_option("--port", opts.port, "the server's TCP port")
      ->required()
      ->check(CLI::Range(1, 65535));
  app.add_option("-c,--connections", opts.connections, "connections, one message in flight each")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--size", opts.size, "message size in bytes")->check(CLI::Range(1, kMaxMessage));
  app.add_option("--warmup", opts.warmup, "seconds before the measured window")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("-d,--duration", opts.duration, "seconds measured")
      ->check(CLI::Range(0.01, 3600.0));
  app.add_option("--sources", opts.sources,
                 "source addresses 127.0.0.1..N to spread the connections over (0: one per 5000)")
      ->check(CLI::Range(0, 254));
  app.add_option("--server-pid", opts.server_pid,
                 "also report this process's CPU use over the window (server_cpu_pct)");
  app.add_option("--engine", opts.engine,
                 "uring: io_uring, one kernel entry per batch (default); epoll: one write() and "
                 "one read() per message")
      ->check(CLI::IsMember({"uring", "epoll"}));
  app.add_flag("--hold", opts.hold,
               "exact window for syscall counting: print `ready`, wait for SIGUSR1, measure, "
               "drain, print the result and `done`, wait for SIGUSR1 again");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (opts.hold) {  // SIGUSR1 is taken with sigwait(), so it must stay blocked
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  raise_fd_limit(opts.connections);
  Load load(opts);
  return load.run();
}
