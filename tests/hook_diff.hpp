// The differential harness of the hook tests. A scenario runs twice: on a
// plain thread, where every hooked call passes straight to the kernel, and
// as a coroutine on a coil scheduler, where a call that would block parks the
// coroutine. Both runs record what they observe (return values, errno,
// bytes, flags; durations only as "within loose bounds") into an Outcome,
// and the two Outcomes must be equal: a hooked call must be
// indistinguishable from the kernel's.
//
//   TEST(HookDiffIo, PipeEof) {
//     expect_same([](Ctx& c) {
//       int p[2];
//       c.ret("pipe", pipe(p));
//       c.ret("close w", close(p[1]));
//       char b[4];
//       c.ret("read", read(p[0], b, 4));  // "read = 0" in both runs
//       c.ret("close r", close(p[0]));
//     });
//   }
//
// A scenario that needs a peer (the other end of a socket writing after a
// delay) starts it with Ctx::peer(): a std::thread in the plain run, a
// coroutine of the same scheduler in the hooked run. In the hooked run a
// ticker coroutine counts 1 ms sleeps; Ctx::expect_yielded() checks that it
// kept running while a call waited, which proves the call parked the
// coroutine instead of blocking the thread. A third, "crowded" run keeps
// another coroutine always ready beside the scenario, so that every send it
// makes is batched (coil/detail/batch.hpp). Every run has a watchdog: a run
// that hangs (a hook that blocks forever) ends the process with a message
// naming the test instead of hanging ctest.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <iterator>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil::test::hook {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// errno_name() is "EAGAIN" for EAGAIN, "0" for no error.
inline std::string errno_name(int e) {
  if (e == 0) return "0";
  const char* name = strerrorname_np(e);
  return name ? name : "errno " + std::to_string(e);
}

// flag_names() spells the set bits of value with names, the rest in hex.
inline std::string flag_names(long value,
                              std::initializer_list<std::pair<long, const char*>> names) {
  std::string s;
  for (auto [bit, name] : names) {
    if (bit != 0 && (value & bit) == bit) {
      s += s.empty() ? "" : "|";
      s += name;
      value &= ~bit;
    }
  }
  if (value != 0 || s.empty()) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%s0x%lx", s.empty() ? "" : "|", value);
    s += hex;
  }
  return s;
}

// fl_names() spells F_GETFL flags: access mode first, then status flags.
inline std::string fl_names(long fl) {
  const char* mode = (fl & O_ACCMODE) == O_RDONLY   ? "O_RDONLY"
                     : (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                    : "O_RDWR";
  long rest = fl & ~O_ACCMODE;
  if (rest == 0) return mode;
  return std::string(mode) + "|" +
         flag_names(rest, {{O_NONBLOCK, "O_NONBLOCK"},
                           {O_APPEND, "O_APPEND"},
                           {O_ASYNC, "O_ASYNC"},
                           {O_DIRECT, "O_DIRECT"},
                           {O_NOATIME, "O_NOATIME"},
                           {O_LARGEFILE, "O_LARGEFILE"}});
}

// poll_names() spells poll(2) event bits.
inline std::string poll_names(short ev) {
  return flag_names(static_cast<unsigned short>(ev), {{POLLIN, "POLLIN"},
                                                      {POLLPRI, "POLLPRI"},
                                                      {POLLOUT, "POLLOUT"},
                                                      {POLLERR, "POLLERR"},
                                                      {POLLHUP, "POLLHUP"},
                                                      {POLLNVAL, "POLLNVAL"},
                                                      {POLLRDNORM, "POLLRDNORM"},
                                                      {POLLRDBAND, "POLLRDBAND"},
                                                      {POLLWRNORM, "POLLWRNORM"},
                                                      {POLLWRBAND, "POLLWRBAND"},
                                                      {POLLRDHUP, "POLLRDHUP"}});
}

// printable() shows bytes as text with escapes, long ones cut, with a hash.
inline std::string printable(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::string s = std::to_string(n) + " bytes \"";
  for (std::size_t i = 0; i < n && i < 48; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') {
      s += static_cast<char>(p[i]);
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", p[i]);
      s += esc;
    }
  }
  s += n > 48 ? "...\"" : "\"";
  if (n > 48) {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    char hex[32];
    std::snprintf(hex, sizeof hex, " fnv %016llx", static_cast<unsigned long long>(h));
    s += hex;
  }
  return s;
}

// pattern() is n bytes of a position-dependent pattern seeded by seed, so a
// lost, repeated or reordered chunk shows up.
inline std::vector<char> pattern(std::size_t n, unsigned seed = 1) {
  std::vector<char> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    v[i] = static_cast<char>(x >> 24);
  }
  return v;
}

// opaque() hides a value from the compiler, so that deliberately bad
// arguments (a negative count, a wild pointer) pass its argument checks.
template <class T>
T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

// Observation is one line of an Outcome. Only text is compared; detail
// (a measured duration) is shown beside it to explain a difference.
struct Observation {
  std::string text;
  std::string detail;
  bool operator==(const Observation& o) const { return text == o.text; }
  std::string shown() const { return detail.empty() ? text : text + "  (" + detail + ")"; }
};

// Outcome is what one run of a scenario observed, one line per observation.
struct Outcome {
  std::vector<Observation> lines;
  bool operator==(const Outcome&) const = default;
};

// PrintTo() lets GoogleTest print an Outcome one observation per line.
inline void PrintTo(const Outcome& o, std::ostream* os) {
  for (const auto& line : o.lines) *os << "\n    " << line.shown();
}

// Stopwatch measures the time since it was made or last reset.
class Stopwatch {
 public:
  Duration elapsed() const { return std::chrono::steady_clock::now() - start_; }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  TimePoint start_ = std::chrono::steady_clock::now();
};

// thread_cpu() is the calling thread's CPU time.
inline Duration thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// expect_blocks() runs call on this (plain) thread while `wake` runs on
// another thread after 100 ms; the call must wait for it without spinning
// and return want.
template <class Call, class Wake>
void expect_blocks(const char* what, Call call, Wake wake, long want) {
  ASSERT_EQ(Scheduler::current(), nullptr);
  std::thread waker([&] {
    std::this_thread::sleep_for(100ms);
    wake();
  });
  Stopwatch sw;
  Duration cpu0 = thread_cpu();
  long got = static_cast<long>(call());
  int err = errno;
  Duration cpu = thread_cpu() - cpu0;
  Duration wall = sw.elapsed();
  waker.join();
  EXPECT_EQ(got, want) << what << ": " << errno_name(err);
  EXPECT_GE(wall, 90ms) << what << " returned before the other thread acted";
  EXPECT_LT(cpu, 50ms) << what << " spun for " << std::chrono::duration_cast<Ms>(cpu).count()
                       << " ms of CPU instead of sleeping in the kernel";
}

// Ctx is what a scenario records into and starts peers with.
class Ctx {
 public:
  explicit Ctx(bool hooked) : hooked_(hooked) {}
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
  ~Ctx() {
    for (auto& t : peers_plain_) t.join();
  }

  // hooked() is true in the coroutine run.
  bool hooked() const { return hooked_; }
  const char* mode() const { return hooked_ ? "hooked" : "plain"; }

  // ret() records "label = r", plus errno's name when r is -1, and returns
  // r with errno untouched. Call it as c.ret("read", read(...)).
  template <std::integral T>
  T ret(std::string_view label, T r) {
    int e = errno;
    std::string line = std::string(label) + " = " + std::to_string(r);
    if (r == -1) line += " " + errno_name(e);
    add(std::move(line));
    errno = e;
    return r;
  }

  // fd() records a call that returns a new fd: "label = fd" (the number
  // itself differs between the runs: the scheduler holds fds of its own), or
  // -1 with errno's name. It returns r with errno untouched.
  int fd(std::string_view label, int r) {
    int e = errno;
    add(std::string(label) + (r >= 0 ? " = fd" : " = " + std::to_string(r) + " " + errno_name(e)));
    errno = e;
    return r;
  }

  // err() records a call that returns an error number (0 for success), as
  // clock_nanosleep() and pthread functions do.
  int err(std::string_view label, int r) {
    add(std::string(label) + " returns " + errno_name(r));
    return r;
  }

  // val() records "label: value".
  void val(std::string_view label, std::string_view value) {
    add(std::string(label) + ": " + std::string(value));
  }
  template <std::integral T>
  void val(std::string_view label, T value) {
    val(label, std::to_string(value));
  }
  // check() records "label: yes/no".
  void check(std::string_view label, bool ok) { val(label, ok ? "yes" : "no"); }
  // bytes() records data as printable text.
  void bytes(std::string_view label, const void* data, long n) {
    val(label, n < 0 ? std::string("none") : printable(data, static_cast<std::size_t>(n)));
  }

  // within() records whether d lies in [lo, hi): loose bounds on a duration
  // that both runs must meet. The exact duration is shown only when not.
  void within(std::string_view label, Duration d, Duration lo, Duration hi) {
    auto ms = [](Duration x) { return std::to_string(std::chrono::duration_cast<Ms>(x).count()); };
    std::string range = "[" + ms(lo) + " ms, " + ms(hi) + " ms)";
    const char* where = d < lo ? "below " : d < hi ? "in " : "above ";
    add(std::string(label) + ": " + where + range, "took " + ms(d) + " ms");
  }

  // timed() runs call() (returning an integer, errno on -1), records its
  // result like ret() and whether it took a time in [lo, hi). When lo is
  // 50 ms or more the call waited, and in the hooked run the ticker must
  // have kept running meanwhile (expect_yielded).
  template <class F>
  auto timed(std::string_view label, Duration lo, Duration hi, F&& call, bool is_fd = false) {
    long t0 = ticks_;
    Stopwatch sw;
    auto r = call();
    int e = errno;
    Duration took = sw.elapsed();
    if (is_fd) {
      fd(label, static_cast<int>(r));
    } else {
      ret(label, r);
    }
    within(std::string(label) + " took", took, lo, hi);
    if (lo >= 50ms) expect_yielded(t0, label);
    errno = e;
    return r;
  }

  // timed_fd() is timed() for a call that returns a new fd (accept).
  template <class F>
  int timed_fd(std::string_view label, Duration lo, Duration hi, F&& call) {
    return timed(label, lo, hi, std::forward<F>(call), true);
  }

  // peer() runs fn beside the scenario: on a std::thread in the plain run,
  // as a coroutine of the same scheduler in the hooked run. Peers are joined
  // by join_peers() or when the run ends.
  void peer(std::function<void()> fn) {
    if (hooked_) {
      peers_hooked_.push_back(coil::spawn(std::move(fn), SpawnOptions{.name = "peer"}));
    } else {
      peers_plain_.emplace_back(std::move(fn));
    }
  }
  void join_peers() {
    for (auto& h : peers_hooked_) h.join();
    peers_hooked_.clear();
    for (auto& t : peers_plain_) t.join();
    peers_plain_.clear();
  }
  // abandon_peers() detaches the peer coroutines when the scenario failed
  // with an exception; the scheduler still runs them to their end.
  void abandon_peers() {
    for (auto& h : peers_hooked_) h.detach();
    peers_hooked_.clear();
  }

  // pause() sleeps in a peer or scenario without depending on the sleep
  // hooks: coil::sleep_for parks a coroutine and blocks a plain thread.
  static void pause(Duration d) { coil::sleep_for(d); }

  // ticks() counts the ticker's 1 ms sleeps (hooked run; 0 in the plain one).
  long ticks() const { return ticks_; }

  // expect_yielded() checks, in the hooked run only, that the ticker ran at
  // least min_ticks times since `since`: the call waited as a coroutine.
  // Use it after calls that wait 50 ms or more.
  void expect_yielded(long since, std::string_view what, long min_ticks = 3) {
    if (!hooked_) return;
    EXPECT_GE(ticks_ - since, min_ticks)
        << what << " did not yield: the ticker coroutine ran " << ticks_ - since
        << " times while it waited, so the call blocked the scheduler's thread";
  }

  const Outcome& outcome() const { return out_; }

  // dump() prints what was recorded so far (for the watchdog).
  void dump(FILE* f) {
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock) return;
    std::fprintf(f, "what the %s run recorded before it hung:\n", mode());
    for (const auto& line : out_.lines) std::fprintf(f, "    %s\n", line.shown().c_str());
  }

  // Used by run_hooked().
  void start_ticker() {
    ticker_ = coil::spawn(
        [this] {
          while (!stop_ticker_) {
            coil::sleep_for(1ms);
            ++ticks_;
          }
        },
        SpawnOptions{.name = "ticker"});
  }
  void stop_ticker() {
    stop_ticker_ = true;
    ticker_.detach();  // it ends within 1 ms; the scheduler's run() waits for it
  }
  // Used by run_hooked() for the crowded run: a coroutine that is always ready, so that every
  // send the scenario makes goes into the scheduler's batch (coil/detail/batch.hpp).
  void start_crowd() {
    coil::spawn(
        [this] {
          while (!stop_crowd_) coil::yield();
        },
        SpawnOptions{.name = "crowd"})
        .detach();
  }
  void stop_crowd() { stop_crowd_ = true; }

 private:
  void add(std::string text, std::string detail = {}) {
    std::lock_guard lock(mu_);
    out_.lines.push_back({std::move(text), std::move(detail)});
  }

  bool hooked_;
  std::mutex mu_;  // peers on threads may record too
  Outcome out_;
  std::vector<std::thread> peers_plain_;
  std::vector<JoinHandle<void>> peers_hooked_;
  JoinHandle<void> ticker_;
  long ticks_ = 0;
  bool stop_ticker_ = false;
  bool stop_crowd_ = false;
};

using Scenario = std::function<void(Ctx&)>;

// kAtOnce and kWaited are the loose bounds of timed() for a call that must
// not wait, and for one that waits for a peer acting after kPeerDelay.
inline constexpr auto kPeerDelay = 60ms;
inline constexpr Duration kAtOnceLo = 0ms, kAtOnceHi = 400ms;
inline constexpr Duration kWaitedLo = 50ms, kWaitedHi = 10s;

// kWatchdog bounds every run; a run that takes longer has hung.
inline constexpr auto kWatchdog = 30s;

// with_watchdog() runs fn on a fresh thread (SIGPIPE blocked there, so a
// stray SIGPIPE stays pending instead of killing the test) and waits at most
// limit for it. A run that does not finish in time means a hooked call
// blocked forever: the process ends with a message, since the stuck thread
// cannot be stopped.
template <class F>
void with_watchdog(const char* what, F&& fn, Duration limit = kWatchdog, Ctx* ctx = nullptr) {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  std::exception_ptr error;
  std::thread runner([&] {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
    done.set_value();
  });
  if (finished.wait_for(limit) == std::future_status::timeout) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::fprintf(
        stderr, "\n%s.%s: the %s run did not finish within %lld s: a call hung. Aborting.\n",
        info ? info->test_suite_name() : "?", info ? info->name() : "?", what,
        static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(limit).count()));
    if (ctx) ctx->dump(stderr);
    std::fflush(stderr);
    std::_Exit(3);
  }
  runner.join();
  if (error) std::rethrow_exception(error);
}

// open_fds() lists the open fds of this process.
inline std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return fds;
  int own = dirfd(dir);
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd != own) fds.push_back(fd);
  }
  closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

// record_pending_sigpipe() notes whether a SIGPIPE is pending for the
// thread (it is blocked there) and consumes it.
inline void record_pending_sigpipe(Ctx& c) {
  sigset_t pending;
  sigpending(&pending);
  bool is_pending = sigismember(&pending, SIGPIPE) == 1;
  c.check("SIGPIPE pending at the end", is_pending);
  if (is_pending) {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    timespec zero{};
    sigtimedwait(&pipe_only, nullptr, &zero);
  }
}

// RunOptions tune one run.
struct RunOptions {
  bool check_fds = true;  // the run must close every fd it opened
  Duration limit = kWatchdog;
};

inline void expect_no_fd_leak(const std::vector<int>& before, const char* mode) {
  std::vector<int> after = open_fds();
  std::vector<int> leaked;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(leaked));
  std::string list;
  for (int fd : leaked) list += " " + std::to_string(fd);
  EXPECT_TRUE(leaked.empty()) << "the " << mode << " run left fds open:" << list;
}

// run_plain() runs the scenario on a plain thread: no scheduler, so every
// hook passes the call through.
inline Outcome run_plain(const Scenario& scenario, RunOptions opts = {}) {
  std::vector<int> before = open_fds();
  Ctx c(false);
  with_watchdog(
      "plain",
      [&] {
        EXPECT_EQ(Scheduler::current(), nullptr);
        scenario(c);
        c.join_peers();
        record_pending_sigpipe(c);
      },
      opts.limit, &c);
  if (opts.check_fds) expect_no_fd_leak(before, "plain");
  return c.outcome();
}

// Crowd says whether run_hooked() keeps a coroutine ready beside the scenario's, which makes
// the scheduler batch every send the scenario makes (its "crowded" run), or not.
enum class Crowd : bool { kNo, kYes };

// run_hooked() runs the scenario as a coroutine of a fresh scheduler (on a
// fresh thread), with the ticker beside it (and the crowd, if asked), and
// checks that the scheduler ends with no coroutine or stack left over.
inline Outcome run_hooked(const Scenario& scenario, RunOptions opts = {},
                          Crowd crowd = Crowd::kNo) {
  std::vector<int> before = open_fds();
  Ctx c(true);
  const char* mode = crowd == Crowd::kYes ? "crowded" : "hooked";
  with_watchdog(
      mode,
      [&] {
        {
          Scheduler sched({.io_uring = crowd == Crowd::kYes ? IoUring::kOn : IoUring::kFromEnv});
          auto main = sched.spawn(
              [&] {
                c.start_ticker();
                if (crowd == Crowd::kYes) c.start_crowd();
                struct Stop {
                  Ctx& c;
                  ~Stop() {
                    c.stop_ticker();
                    c.stop_crowd();
                  }
                } stop{c};
                try {
                  scenario(c);
                } catch (...) {
                  c.abandon_peers();
                  throw;
                }
                c.join_peers();
              },
              SpawnOptions{.name = "scenario"});
          sched.run();
          main.join();
          EXPECT_EQ(sched.stats().live_coroutines, 0u)
              << "the " << mode << " run leaked coroutines";
          EXPECT_EQ(sched.stats().stacks_in_use, 0u)
              << "the " << mode << " run left stacks unreleased";
        }
        record_pending_sigpipe(c);
      },
      opts.limit, &c);
  if (opts.check_fds) expect_no_fd_leak(before, mode);
  return c.outcome();
}

// same_outcome() compares the runs line by line for EXPECT_PRED_FORMAT2.
inline ::testing::AssertionResult same_outcome(const char*, const char*, const Outcome& plain,
                                               const Outcome& hooked) {
  if (plain == hooked) return ::testing::AssertionSuccess();
  auto r = ::testing::AssertionFailure();
  r << "the hooked run differs from the kernel's (plain run); '!' marks the differences:\n";
  std::size_t n = std::max(plain.lines.size(), hooked.lines.size());
  for (std::size_t i = 0; i < n; ++i) {
    const Observation none{"(nothing)", {}};
    const Observation& p = i < plain.lines.size() ? plain.lines[i] : none;
    const Observation& h = i < hooked.lines.size() ? hooked.lines[i] : none;
    if (p == h && p.detail == h.detail) {
      r << "      " << p.shown() << "\n";
    } else if (p == h) {
      r << "      " << p.text << "  (plain: " << p.detail << "; hooked: " << h.detail << ")\n";
    } else {
      r << "  !  plain:  " << p.shown() << "\n  !  hooked: " << h.shown() << "\n";
    }
  }
  return r;
}

// expect_same() runs the scenario plainly, hooked, and hooked in a crowd, and expects equal
// outcomes.
inline void expect_same(const Scenario& scenario, RunOptions opts = {}) {
  Outcome plain = run_plain(scenario, opts);
  Outcome hooked = run_hooked(scenario, opts);
  Outcome crowded = run_hooked(scenario, opts, Crowd::kYes);
  if (std::getenv("COIL_HOOK_DIFF_SHOW")) {  // to read what a scenario observes
    std::fprintf(stderr, "plain run's outcome:");
    for (const auto& line : plain.lines) std::fprintf(stderr, "\n    %s", line.shown().c_str());
    std::fprintf(stderr, "\n");
  }
  EXPECT_FALSE(plain.lines.empty()) << "the scenario recorded nothing";
  EXPECT_PRED_FORMAT2(same_outcome, plain, hooked);
  EXPECT_PRED_FORMAT2(same_outcome, plain, crowded) << "(in the crowded run: sends batched)";
}

// ---- sockets: 127.0.0.0/8 and unix only ----

// loopback() is 127.0.0.1:port.
inline sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// port_of() is the local port fd is bound to, 0 on error.
inline std::uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

// tcp_listener() opens a TCP socket (with type_flags such as SOCK_NONBLOCK),
// binds it to 127.0.0.1 on a free port and listens; -1 on error, recorded.
inline int tcp_listener(Ctx& c, int backlog = 16, int type_flags = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
  if (fd < 0) return c.fd("listener socket", fd);
  sockaddr_in a = loopback(0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, backlog) != 0) {
    c.ret("listener bind/listen", -1);
    close(fd);
    return -1;
  }
  return fd;
}

// connect_to() connects fd to 127.0.0.1:port and returns connect's result.
inline int connect_to(int fd, std::uint16_t port) {
  sockaddr_in a = loopback(port);
  return connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
}

// TcpConn is a connected TCP pair over 127.0.0.1 made with blocking calls.
struct TcpConn {
  int client = -1, server = -1;
  void close_both() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
    client = server = -1;
  }
};

// tcp_conn() connects a client to a fresh listener and accepts it; the
// listener is closed again. The results are recorded.
inline TcpConn tcp_conn(Ctx& c, int client_flags = 0) {
  TcpConn t;
  int l = tcp_listener(c);
  if (l < 0) return t;
  t.client = c.fd("tcp socket", socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | client_flags, 0));
  c.ret("tcp connect", connect_to(t.client, port_of(l)));
  t.server = c.fd("tcp accept", accept4(l, nullptr, nullptr, SOCK_CLOEXEC));
  close(l);
  return t;
}

// unix_pair() is socketpair(AF_UNIX, type), recorded; {-1, -1} on error.
inline std::pair<int, int> unix_pair(Ctx& c, int type) {
  int sv[2] = {-1, -1};
  c.ret("socketpair", socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv));
  return {sv[0], sv[1]};
}

// getfl() records F_GETFL of fd by name.
inline void getfl(Ctx& c, std::string_view label, int fd) {
  int fl = fcntl(fd, F_GETFL);
  c.val(label, fl < 0 ? "-1 " + errno_name(errno) : fl_names(fl));
}

// set_timeout() sets SO_RCVTIMEO or SO_SNDTIMEO, recorded.
inline int set_timeout(Ctx& c, int fd, int opt, Duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  return c.ret(opt == SO_RCVTIMEO ? "setsockopt SO_RCVTIMEO" : "setsockopt SO_SNDTIMEO",
               setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv));
}

// fill() writes with MSG_DONTWAIT until the socket's send buffer is full
// and returns the bytes written.
inline std::size_t fill(int fd) {
  std::vector<char> chunk(65536, 'f');
  std::size_t total = 0;
  for (;;) {
    ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  return total;
}

// drain() reads with MSG_DONTWAIT until nothing is left, or limit bytes are
// read, and returns the bytes read. A limit keeps a writer that refills the
// buffer as fast as it empties from finishing whatever it writes.
inline std::size_t drain(int fd, std::size_t limit = SIZE_MAX) {
  std::vector<char> chunk(65536);
  std::size_t total = 0;
  while (total < limit) {
    ssize_t n = recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  return total;
}

}  // namespace coil::test::hook
