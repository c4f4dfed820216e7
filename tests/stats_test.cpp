// Runtime statistics: per scheduler, added up over the process
// (coil/stats.hpp), and the syscalls that readiness tracking saves.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "coil/runtime.hpp"
#include "coil/stats.hpp"
#include "test_support.hpp"

namespace coil::test {
namespace {

using namespace std::chrono_literals;

// Deltas, not absolutes: other tests of this binary may have run before in
// the same process.
ProcessStats operator-(const ProcessStats& a, const ProcessStats& b) {
  ProcessStats d;
  d.spawns = a.spawns - b.spawns;
  d.switches = a.switches - b.switches;
  d.syscalls_avoided = a.syscalls_avoided - b.syscalls_avoided;
  d.stack_pool_misses = a.stack_pool_misses - b.stack_pool_misses;
  d.schedulers = a.schedulers - b.schedulers;
  d.live_schedulers = a.live_schedulers - b.live_schedulers;
  return d;
}

TEST(ProcessStats, AddUpLiveAndDestroyedSchedulers) {
  ProcessStats before = process_stats();
  SchedulerStats mine;
  {
    Scheduler sched;
    for (int i = 0; i < 3; ++i) {
      sched
          .spawn([] {
            yield();
            yield();
          })
          .detach();
    }
    sched.run();
    mine = sched.stats();
    ProcessStats during = process_stats() - before;
    EXPECT_EQ(during.live_schedulers, 1u);
    EXPECT_EQ(during.spawns, 3u);
    EXPECT_EQ(during.switches, mine.switches);
  }
  EXPECT_EQ(mine.spawns, 3u);
  EXPECT_EQ(mine.switches, 9u) << "three coroutines, each resumed three times";
  EXPECT_EQ(mine.peak_coroutines, 3u);
  ProcessStats after = process_stats() - before;
  EXPECT_EQ(after.schedulers, 1u);
  EXPECT_EQ(after.live_schedulers, 0u);
  EXPECT_EQ(after.spawns, 3u) << "a destroyed scheduler's counts are kept";
  EXPECT_EQ(after.switches, mine.switches);
}

TEST(ProcessStats, CountTheWorkersOfARuntime) {
  ProcessStats before = process_stats();
  std::atomic<int> ran{0};
  {
    Runtime rt({.workers = 2});
    EXPECT_EQ((process_stats() - before).live_schedulers, 2u);
    for (int i = 0; i < 10; ++i) rt.go([&] { ran.fetch_add(1); });
    rt.wait();
  }
  EXPECT_EQ(ran.load(), 10);
  ProcessStats after = process_stats() - before;
  EXPECT_EQ(after.schedulers, 2u);
  EXPECT_EQ(after.spawns, 10u);
}

// reads() has a reader take `messages` messages of 10 bytes from a stream
// socket, each written after the reader has parked, into a buffer of
// `capacity` bytes, and returns how many syscalls readiness tracking saved.
std::uint64_t avoided_by_reads(int messages, std::size_t capacity) {
  Scheduler sched;
  sched
      .spawn([=] {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        // The reader says which read it is in before making it; between that
        // and the read it cannot give up the CPU, so once the writer runs
        // again the reader is parked in that read.
        auto reading = std::make_shared<int>(-1);
        auto reader = spawn([=] {
          char buf[64];
          for (int i = 0; i < messages; ++i) {
            *reading = i;
            ASSERT_EQ(::read(sv[0], buf, capacity), 10);
          }
        });
        for (int i = 0; i < messages; ++i) {
          while (*reading != i) yield();
          ASSERT_EQ(::write(sv[1], "0123456789", 10), 10);
        }
        reader.join();
        ::close(sv[0]);
        ::close(sv[1]);
      })
      .detach();
  sched.run();
  return sched.stats().syscalls_avoided;
}

TEST(SchedulerStats, AShortReadSavesTheNextReadsEagain) {
  // The first read meets EAGAIN (nothing sent yet); each later one follows
  // a short read, which proved the socket empty, and parks without trying.
  EXPECT_EQ(avoided_by_reads(5, 64), 4u);
}

TEST(SchedulerStats, AFullReadSavesNothing) {
  // A read that fills its buffer proves nothing: the next read tries, meets
  // EAGAIN and then parks.
  EXPECT_EQ(avoided_by_reads(5, 10), 0u);
}

TEST(SchedulerStats, AShortWriteSavesTheNextWritesEagain) {
  Scheduler sched;
  sched
      .spawn([] {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        int small = 4096;
        ASSERT_EQ(::setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        auto drain = spawn([fd = sv[0]] {
          char buf[4096];
          while (::read(fd, buf, sizeof buf) > 0) {
          }
        });
        // A blocking write larger than the buffer goes out in short writes, each
        // followed by a wait that makes no EAGAIN probe.
        std::string big(1 << 20, 'x');
        ASSERT_EQ(::write(sv[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
        ::close(sv[1]);
        drain.join();
        ::close(sv[0]);
      })
      .detach();
  sched.run();
  EXPECT_GT(sched.stats().syscalls_avoided, 0u);
}

// A fork() child keeps the schedulers it can still run (an idle one of the
// forking thread) with their counts restarted, and drops those of threads it
// does not have (a Runtime's worker). Exit status: 0 all right, else the
// number of the failed check.
TEST(ProcessStats, AForkChildKeepsOnlyTheSchedulersItCanRun) {
  Scheduler idle;
  idle.spawn([] {}).detach();
  idle.run();
  Runtime rt({.workers = 1});
  ProcessStats before = process_stats();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ProcessStats s = process_stats();
    if (s.live_schedulers != 1 || s.schedulers != 1) ::_exit(1);
    if (s.spawns != 0) ::_exit(2);
    idle.spawn([] { yield(); }).detach();
    idle.run();
    if (process_stats().spawns != 1 || idle.stats().switches != 2) ::_exit(3);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: wrong schedulers kept; 2: counts not restarted; "
                                       "3: the kept scheduler does not count";
  EXPECT_GE(before.live_schedulers, 2u);
}

TEST(ProcessStats, FormatNamesEveryCounter) {
  ProcessStats s;
  s.schedulers = 2;
  s.live_schedulers = 1;
  s.spawns = 1234567;
  s.switches = 42;
  std::string text = format_stats(s);
  for (const char* part :
       {"2 scheduler(s), 1 alive", "coroutines spawned", "1,234,567", "context switches",
        "epoll waits", "syscalls avoided", "stack pool hits", "stack pool misses"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << " missing from:\n" << text;
  }
  EXPECT_NE(text.find("stats of process " + std::to_string(::getpid())), std::string::npos);
}

}  // namespace
}  // namespace coil::test
