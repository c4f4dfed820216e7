// Differential tests of blocking file locks: flock() (and, with the fcntl
// hook, F_OFD_SETLKW) waits for a lock held through another open file
// description, as a coroutine that lets the others run. Each scenario runs
// on a plain thread and as a coroutine (hook_diff.hpp).
#include <fcntl.h>
#include <sys/file.h>

#include <string>

#include "hook_diff.hpp"

namespace coil::test::hook {
namespace {

// LockFile is a scratch file opened twice: two open file descriptions, whose
// locks conflict even within one process.
struct LockFile {
  std::string path = "/tmp/coil-lock-test-" + std::to_string(getpid());
  int a = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  int b = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ~LockFile() {
    close(a);
    close(b);
    unlink(path.c_str());
  }
};

TEST(HookLock, FlockWaitsForTheHolder) {
  expect_same([](Ctx& c) {
    LockFile f;
    c.ret("flock a LOCK_EX", flock(f.a, LOCK_EX));
    c.timed("flock b LOCK_EX|LOCK_NB", kAtOnceLo, kAtOnceHi,
            [&] { return flock(f.b, LOCK_EX | LOCK_NB); });
    c.timed("flock b LOCK_SH|LOCK_NB", kAtOnceLo, kAtOnceHi,
            [&] { return flock(f.b, LOCK_SH | LOCK_NB); });
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      if (flock(f.a, LOCK_UN) != 0) ADD_FAILURE();
    });
    c.timed("flock b LOCK_EX waits for a's LOCK_UN", kWaitedLo, kWaitedHi,
            [&] { return flock(f.b, LOCK_EX); });
    c.join_peers();
    c.timed("flock a LOCK_SH|LOCK_NB while b holds it", kAtOnceLo, kAtOnceHi,
            [&] { return flock(f.a, LOCK_SH | LOCK_NB); });
    c.ret("flock b LOCK_UN", flock(f.b, LOCK_UN));
    c.ret("flock bad fd", flock(-1, LOCK_EX));
    c.ret("flock bad op", flock(f.a, 0));
  });
}

// Open file description locks conflict between two opens in one process,
// so the plain run can show the kernel's F_OFD_SETLKW waiting.
TEST(HookLock, OfdSetlkwWaitsForTheHolder) {
  expect_same([](Ctx& c) {
    LockFile f;
    struct flock whole {};
    whole.l_type = F_WRLCK;
    whole.l_whence = SEEK_SET;
    c.ret("F_OFD_SETLK a", fcntl(f.a, F_OFD_SETLK, &whole));
    struct flock other = whole;
    c.timed("F_OFD_SETLK b while a holds it", kAtOnceLo, kAtOnceHi,
            [&] { return fcntl(f.b, F_OFD_SETLK, &other); });
    struct flock probe = whole;
    c.ret("F_OFD_GETLK b", fcntl(f.b, F_OFD_GETLK, &probe));
    c.val("it reports a write lock", probe.l_type == F_WRLCK ? "yes" : "no");
    c.peer([&] {
      Ctx::pause(kPeerDelay);
      struct flock unlock = whole;
      unlock.l_type = F_UNLCK;
      if (fcntl(f.a, F_OFD_SETLK, &unlock) != 0) ADD_FAILURE();
    });
    c.timed("F_OFD_SETLKW b waits for a's unlock", kWaitedLo, kWaitedHi,
            [&] { return fcntl(f.b, F_OFD_SETLKW, &other); });
    c.join_peers();
    struct flock bad = whole;
    bad.l_whence = 42;
    c.ret("F_OFD_SETLKW with a bad l_whence", fcntl(f.b, F_OFD_SETLKW, &bad));
    struct flock unlock = whole;
    unlock.l_type = F_UNLCK;
    c.ret("F_OFD_SETLK b unlock", fcntl(f.b, F_OFD_SETLK, &unlock));
    c.timed("F_SETLKW on a free file", kAtOnceLo, kAtOnceHi,
            [&] { return fcntl(f.a, F_SETLKW, &whole); });
  });
}

}  // namespace
}  // namespace coil::test::hook
