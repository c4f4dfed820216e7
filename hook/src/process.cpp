// fork_workers() (coil/process.hpp).
#include "coil/process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace coil {
namespace {

// The children the parent's handler forwards signals to: published before the
// handler is installed, read by it with atomic loads only.
std::atomic<const pid_t*> forward_to{nullptr};
std::atomic<int> forward_count{0};

void forward(int sig) {
  const pid_t* pids = forward_to.load(std::memory_order_acquire);
  int n = forward_count.load(std::memory_order_acquire);
  for (int i = 0; pids && i < n; ++i) {
    if (pids[i] > 0) kill(pids[i], sig);
  }
}

// Forwarding installs forward() for SIGINT and SIGTERM and puts the old
// actions back when it goes.
class Forwarding {
 public:
  explicit Forwarding(const std::vector<pid_t>& pids) {
    forward_to.store(pids.data(), std::memory_order_release);
    forward_count.store(static_cast<int>(pids.size()), std::memory_order_release);
    struct sigaction act {};
    act.sa_handler = forward;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART;
    sigaction(SIGINT, &act, &old_int_);
    sigaction(SIGTERM, &act, &old_term_);
  }
  ~Forwarding() { restore(); }

  // restore() puts the old actions back: in the parent at the end, and in a
  // child at once (a worker ends by SIGTERM as the program had it end).
  void restore() noexcept {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    forward_count.store(0, std::memory_order_release);
    forward_to.store(nullptr, std::memory_order_release);
  }
  Forwarding(const Forwarding&) = delete;
  Forwarding& operator=(const Forwarding&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

[[noreturn]] void run_child(int index, const std::function<int(int)>& child,
                            Forwarding& forwarding) {
  forwarding.restore();
  int status = 1;
  try {
    status = child(index);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coil: worker process %d: %s\n", index, e.what());
  } catch (...) {
    std::fprintf(stderr, "coil: worker process %d: an exception not derived from std::exception\n",
                 index);
  }
  std::exit(status);
}

// status_of() waits for pid and turns how it ended into an exit status.
int status_of(pid_t pid) {
  int raw = 0;
  while (waitpid(pid, &raw, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  if (WIFEXITED(raw)) return WEXITSTATUS(raw);
  return WIFSIGNALED(raw) ? 128 + WTERMSIG(raw) : 1;
}

}  // namespace

int fork_workers(int n, const std::function<int(int index)>& child) {
  if (n < 1) throw std::invalid_argument("coil: fork_workers needs at least 1 process");
  std::vector<pid_t> pids(static_cast<std::size_t>(n), 0);
  Forwarding forwarding(pids);
  for (int i = 0; i < n; ++i) {
    std::fflush(nullptr);  // or the child flushes the parent's buffered output again
    pid_t pid = fork();
    if (pid == 0) run_child(i, child, forwarding);
    if (pid < 0) {
      int err = errno;
      forward(SIGTERM);
      for (int j = 0; j < i; ++j) status_of(pids[static_cast<std::size_t>(j)]);
      throw std::system_error(err, std::generic_category(),
                              "coil: fork_workers: fork of worker " + std::to_string(i));
    }
    pids[static_cast<std::size_t>(i)] = pid;
  }
  int result = 0;
  for (pid_t pid : pids) {
    int status = status_of(pid);
    if (result == 0) result = status;
  }
  return result;
}

}  // namespace coil
