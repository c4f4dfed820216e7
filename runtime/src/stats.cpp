// The scheduler registry, process_stats() and COIL_STATS.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include "coil/detail/settings.hpp"
#include "coil/stats.hpp"
#include "registry.hpp"
#include "scheduler_impl.hpp"
#include "sys.hpp"

namespace coil::detail {

constinit SchedulerRegistry scheduler_registry;

namespace {

void add_to(SchedulerStats* sum, const SchedulerStats& s) noexcept {
  sum->spawns += s.spawns;
  sum->switches += s.switches;
  sum->polls += s.polls;
  sum->syscalls_avoided += s.syscalls_avoided;
  sum->syscalls_batched += s.syscalls_batched;
  sum->batch_submits += s.batch_submits;
  sum->stack_maps += s.stack_maps;
  sum->stack_pool_hits += s.stack_pool_hits;
  sum->stack_pool_misses += s.stack_pool_misses;
  sum->stacks_in_use += s.stacks_in_use;
  sum->live_coroutines += s.live_coroutines;
  sum->peak_coroutines += s.peak_coroutines;
}

// StatsOutput is where COIL_STATS prints: a copy of fd 2 taken when the
// first scheduler starts, because a program may close stderr in an atexit
// handler of its own (GNU coreutils do) that runs before coil's. If the
// program closed the copy too and its number now names another file, the
// print goes to fd 2 instead.
struct StatsOutput {
  int fd = -1;
  struct stat st {};

  void open() noexcept {
    fd = sys::dup_cloexec(STDERR_FILENO, 3);
    if (fd >= 0 && sys::fstat(fd, &st) != 0) fd = -1;
  }
  int current() const noexcept {
    struct stat now {};
    if (fd >= 0 && sys::fstat(fd, &now) == 0 && now.st_dev == st.st_dev &&
        now.st_ino == st.st_ino) {
      return fd;
    }
    return STDERR_FILENO;
  }
};

StatsOutput stats_output;

void print_at_exit() noexcept {
  std::string text;
  try {
    text = format_stats(process_stats());
  } catch (const std::bad_alloc&) {
    text = "coil: stats: out of memory\n";
  }
  int fd = stats_output.current();
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = sys::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// stats_wanted() reads COIL_STATS once (a malformed value is read again,
// and refused again, by every later call).
bool stats_wanted() {
  static const bool wanted = [] {
    bool on = bool_setting("COIL_STATS", false);
    if (on) {
      stats_output.open();
      std::atexit(print_at_exit);
    }
    return on;
  }();
  return wanted;
}

}  // namespace

void register_scheduler(SchedulerImpl* s) {
  (void)stats_wanted();
  SchedulerRegistry& r = scheduler_registry;
  r.lock.lock();
  s->registry_next = r.head;
  if (r.head) r.head->registry_prev = s;
  r.head = s;
  s->registered = true;
  ++r.created;
  r.lock.unlock();
}

void retire_scheduler(SchedulerImpl* s) noexcept {
  if (!s->registered) return;  // a fork() child dropped it: its thread is not in the child
  SchedulerRegistry& r = scheduler_registry;
  SchedulerStats last = s->stats();
  last.live_coroutines = 0;  // unwound
  last.stacks_in_use = 0;    // and freed
  r.lock.lock();
  if (s->registry_prev) s->registry_prev->registry_next = s->registry_next;
  if (s->registry_next) s->registry_next->registry_prev = s->registry_prev;
  if (r.head == s) r.head = s->registry_next;
  s->registered = false;
  add_to(&r.retired, last);
  r.lock.unlock();
}

void registry_after_fork(SchedulerImpl* survivor) noexcept {
  SchedulerRegistry& r = scheduler_registry;
  new (&r.lock) SpinLock;  // another thread may have held it at the fork
  if (survivor) survivor->run_tid = static_cast<int>(::gettid());
  // Kept: the forking thread's running scheduler, and those no thread was
  // running (one may be the forking thread's, to run later). Dropped: those
  // other threads were running, which the child does not have.
  SchedulerImpl* kept = nullptr;
  SchedulerImpl* last = nullptr;
  r.created = 0;
  for (SchedulerImpl *s = r.head, *next; s; s = next) {
    next = s->registry_next;
    if (s != survivor && s->run_tid != 0) {
      s->registered = false;
      continue;
    }
    s->registry_prev = last;
    s->registry_next = nullptr;
    (last ? last->registry_next : kept) = s;
    last = s;
    s->restart_stats();
    ++r.created;
  }
  r.head = kept;
  r.retired = SchedulerStats{};
}

}  // namespace coil::detail

namespace coil {

ProcessStats process_stats() noexcept {
  detail::SchedulerRegistry& r = detail::scheduler_registry;
  ProcessStats total;
  r.lock.lock();
  detail::add_to(&total, r.retired);
  for (detail::SchedulerImpl* s = r.head; s; s = s->registry_next) {
    detail::add_to(&total, s->stats());
    ++total.live_schedulers;
  }
  total.schedulers = r.created;
  r.lock.unlock();
  return total;
}

namespace {

// grouped() prints n with thousands separators: 1234567 -> "1,234,567".
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void line(std::string* out, const char* what, std::uint64_t n, const std::string& note = {}) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-24s %15s", what, grouped(n).c_str());
  *out += buf;
  if (!note.empty()) *out += "  " + note;
  *out += '\n';
}

}  // namespace

std::string format_stats(const ProcessStats& s) {
  std::string out = "coil: stats of process " + std::to_string(::getpid()) + ": " +
                    grouped(s.schedulers) + " scheduler(s), " + grouped(s.live_schedulers) +
                    " alive\n";
  line(&out, "coroutines spawned", s.spawns,
       "peak " + grouped(s.peak_coroutines) + " (each scheduler's peak, added up), " +
           grouped(s.live_coroutines) + " alive");
  line(&out, "context switches", s.switches);
  line(&out, "epoll waits", s.polls);
  line(&out, "syscalls avoided", s.syscalls_avoided,
       "reads and writes on a drained fd that parked without meeting EAGAIN");
  line(&out, "syscalls batched", s.syscalls_batched,
       "sends and receives made through io_uring in " + grouped(s.batch_submits) +
           " io_uring_enter(s)");
  line(&out, "stack pool hits", s.stack_pool_hits);
  line(&out, "stack pool misses", s.stack_pool_misses,
       grouped(s.stack_maps) + " mmap(s), " + grouped(s.stacks_in_use) + " stack(s) in use");
  return out;
}

}  // namespace coil
