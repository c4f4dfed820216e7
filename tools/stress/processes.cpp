// Forking the client processes, reading their pipes, showing progress, reaping them.
#include "processes.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "client.hpp"
#include "progress.hpp"
#include "report_channel.hpp"
#include "stop_signal.hpp"

namespace coil_stress {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kRunMargin = 30s;   // past the planned end before the processes are killed
constexpr auto kReapTimeout = 5s;  // for a process whose pipe closed to exit
constexpr std::size_t kReadChunk = 64 * 1024;

// Child is one client process as the parent sees it.
struct Child {
  int process = 0;
  pid_t pid = -1;
  int fd = -1;  // the read end of its report pipe; -1 once closed
  StatsReader reader;
  Stats latest;
  bool reported = false;  // latest holds something
  int status = 0;
  bool reaped = false;
};

// start_child() forks the client process for shares (one per worker thread), whose reports go
// to the write ends in fds (the read ends are the parent's). In the child it never returns.
pid_t start_child(const Options& opts, const std::vector<Share>& shares,
                  const std::vector<Child>& others, const std::vector<std::array<int, 2>>& fds) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  // The child: it dies with the parent, holds only its own pipes' write ends, and runs.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  std::vector<int> report_fds;
  for (const auto& pair : fds) {
    close(pair[0]);
    report_fds.push_back(pair[1]);
  }
  for (const Child& other : others)
    if (other.fd >= 0) close(other.fd);
  int status = run_clients(opts, shares, report_fds);
  for (int fd : report_fds) close(fd);
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(status);  // not exit(): the parent's atexit handlers and stdio buffers are not ours
}

// read_child() reads what child's pipe holds; closes it at end-of-file or on an error.
void read_child(Child& child) {
  char buf[kReadChunk];
  ssize_t n = read(child.fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close(child.fd);
    child.fd = -1;
    return;
  }
  child.reader.feed(buf, static_cast<std::size_t>(n));
  Stats stats;
  while (child.reader.next(stats)) {
    child.latest = std::move(stats);
    child.reported = true;
    stats = Stats();
  }
}

void signal_children(std::vector<Child>& children, int sig) {
  for (Child& child : children)
    if (!child.reaped && child.pid > 0) kill(child.pid, sig);
}

// reap() waits for every child, killing those that do not exit within kReapTimeout.
void reap(std::vector<Child>& children) {
  auto limit = Clock::now() + kReapTimeout;
  bool killed = false;
  for (;;) {  // ends within kReapTimeout plus one SIGKILL
    bool waiting = false;
    for (Child& child : children) {
      if (child.reaped || child.pid <= 0) continue;
      pid_t got = waitpid(child.pid, &child.status, killed ? 0 : WNOHANG);
      if (got == child.pid || (got < 0 && errno == ECHILD)) {
        child.reaped = true;
      } else {
        waiting = true;
      }
    }
    if (!waiting) return;
    if (!killed && Clock::now() >= limit) {
      signal_children(children, SIGKILL);
      killed = true;
      continue;
    }
    usleep(10'000);
  }
}

Stats merged(const std::vector<Child>& children) {
  Stats total;
  total.processes = 0;
  total.finished = true;
  for (const Child& child : children) {
    if (child.reported) {
      total.merge(child.latest);
    } else {
      total.finished = false;
    }
  }
  return total;
}

// describe_exit() says what went wrong with a child, or "" if nothing did.
std::string describe_exit(const Child& child) {
  std::string who = "client process " + std::to_string(child.process) + " (pid " +
                    std::to_string(child.pid) + ")";
  if (WIFSIGNALED(child.status)) {
    const char* name = sigabbrev_np(WTERMSIG(child.status));
    return who + " was killed by SIG" + (name ? name : std::to_string(WTERMSIG(child.status)));
  }
  if (WIFEXITED(child.status) && WEXITSTATUS(child.status) != 0)
    return who + " exited with status " + std::to_string(WEXITSTATUS(child.status));
  if (child.reader.bad()) return who + " sent a malformed report";
  if (!child.reported || !child.latest.finished)
    return who + " ended without its final report; its last progress is counted";
  return "";
}

}  // namespace

RunResult run_processes(const Options& opts) {
  RunResult result;
  auto start = Clock::now();
  auto planned =
      std::chrono::duration<double>(opts.connect_timeout + opts.duration + opts.echo_timeout);
  auto kill_at = start + std::chrono::duration_cast<Clock::duration>(planned) + kRunMargin;

  // A Child per client: a process, or with --threads each worker thread of one, with its own
  // report pipe.
  std::vector<Child> children;
  children.reserve(static_cast<std::size_t>(opts.procs * opts.threads));
  int started = 0;
  for (int p = 0; p < opts.procs; ++p) {
    std::vector<std::array<int, 2>> fds;
    std::vector<Share> shares;
    for (int t = 0; t < opts.threads; ++t) {
      std::array<int, 2> pair{-1, -1};
      if (pipe2(pair.data(), O_CLOEXEC) != 0) {
        result.failures.push_back(std::string("pipe: ") + std::strerror(errno));
        break;
      }
      fds.push_back(pair);
      shares.push_back(share_of(opts, p * opts.threads + t));
    }
    pid_t pid = -1;
    if (result.failures.empty()) pid = start_child(opts, shares, children, fds);
    int fork_errno = errno;
    for (const auto& pair : fds) close(pair[1]);
    if (pid < 0) {
      for (const auto& pair : fds) close(pair[0]);
      if (result.failures.empty()) {
        result.failures.push_back(
            std::string("fork: ") + std::strerror(fork_errno) +
            (fork_errno == EAGAIN ? " (RLIMIT_NPROC, ulimit -u, or kernel.pid_max)" : ""));
      }
      break;
    }
    ++started;
    for (std::size_t t = 0; t < fds.size(); ++t) {
      Child& child = children.emplace_back();
      child.process = shares[t].process;
      child.pid = pid;
      child.fd = fds[t][0];
    }
  }
  if (!result.failures.empty()) signal_children(children, SIGTERM);

  ProgressLine progress(stdout, isatty(STDOUT_FILENO) == 1);
  auto next_show = start + progress.period();
  int signals_passed = 0;
  bool killed = false;
  for (;;) {  // ends when every pipe has closed; kill_at bounds it
    std::vector<pollfd> pfds;
    std::vector<Child*> owners;
    for (Child& child : children) {
      if (child.fd < 0) continue;
      pfds.push_back(pollfd{child.fd, POLLIN, 0});
      owners.push_back(&child);
    }
    if (pfds.empty()) break;
    auto now = Clock::now();
    if (now >= next_show) {
      progress.show(merged(children), opts.connections,
                    std::chrono::duration<double>(now - start).count());
      next_show = std::max(next_show + progress.period(), now);
    }
    if (stop_requests() > signals_passed) {
      result.interrupted = true;
      signals_passed = stop_requests();
      // The first signal asks the processes to stop and report; the next one kills them.
      signal_children(children, signals_passed == 1 ? SIGTERM : SIGKILL);
      killed = killed || signals_passed > 1;
    }
    if (!killed && now >= kill_at) {
      result.failures.push_back(
          "the run went on past its time limit; the client processes were "
          "killed");
      signal_children(children, SIGKILL);
      killed = true;
    }
    auto wait = std::clamp<Clock::duration>(next_show - now, 1ms, 100ms);
    int ready = poll(pfds.data(), pfds.size(),
                     static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    if (ready <= 0) continue;  // a timeout, or EINTR from a signal that the loop looks at
    for (std::size_t i = 0; i < pfds.size(); ++i)
      if (pfds[i].revents != 0) read_child(*owners[i]);
  }
  progress.show(merged(children), opts.connections,
                std::chrono::duration<double>(Clock::now() - start).count());
  progress.finish();
  reap(children);

  result.total = merged(children);
  for (const Child& child : children) {
    std::string trouble = describe_exit(child);
    if (!trouble.empty()) result.failures.push_back(trouble);
  }
  if (started < opts.procs)
    result.failures.push_back("only " + std::to_string(started) + " of " +
                              std::to_string(opts.procs) + " client processes started");
  result.total.requested = opts.connections;
  result.interrupted = result.interrupted || result.total.interrupted;
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace coil_stress
