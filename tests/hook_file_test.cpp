// Regular-file I/O from coroutines: RWF_NOWAIT inline or the file pool, with
// the plain calls' results, file positions and errors.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "coil/scheduler.hpp"
#include "test_support.hpp"

namespace coil::test {
namespace {

using HookFile = SchedulerTest;

std::string temp_path() {
  char path[] = "/tmp/coil-hook-file-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  return path;
}

// run_file_scenario() writes, reads back and positions a file the way a
// program would, returning what it saw; run in and out of a coroutine.
std::vector<long> run_file_scenario(const std::string& path) {
  std::vector<long> seen;
  int fd = open(path.c_str(), O_RDWR | O_TRUNC);
  seen.push_back(fd >= 0);
  std::string big(1 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
  seen.push_back(write(fd, big.data(), big.size()));
  seen.push_back(lseek(fd, 0, SEEK_CUR));
  seen.push_back(fsync(fd));
  seen.push_back(fdatasync(fd));
  seen.push_back(lseek(fd, 0, SEEK_SET));
  std::string back(big.size() + 100, '\0');
  seen.push_back(read(fd, back.data(), back.size()));  // short: the end of the file
  seen.push_back(back.compare(0, big.size(), big) == 0);
  seen.push_back(read(fd, back.data(), back.size()));  // at EOF
  char two[2][3000];
  iovec iov[2] = {{two[0], sizeof two[0]}, {two[1], sizeof two[1]}};
  seen.push_back(lseek(fd, 4096, SEEK_SET));
  seen.push_back(readv(fd, iov, 2));
  seen.push_back(two[0][0]);
  seen.push_back(lseek(fd, 0, SEEK_CUR));
  char c = 0;
  seen.push_back(pread(fd, &c, 1, 8192));
  seen.push_back(c);
  seen.push_back(pwrite(fd, "Z", 1, 8192));
  seen.push_back(pread(fd, &c, 1, 8192));
  seen.push_back(c);
  seen.push_back(lseek(fd, 0, SEEK_CUR));  // pread/pwrite leave the position alone
  seen.push_back(close(fd));
  seen.push_back(read(fd, &c, 1));
  seen.push_back(errno);
  return seen;
}

TEST_F(HookFile, ReadsAndWritesMatchThePlainCalls) {
  std::string path = temp_path();
  std::vector<long> plain = run_file_scenario(path);
  std::vector<long> hooked;
  scheduler().spawn([&] { hooked = run_file_scenario(path); });
  scheduler().run();
  unlink(path.c_str());
  EXPECT_EQ(plain, hooked);
  EXPECT_EQ(plain.at(1), 1 << 20);
}

// pool_threads() counts coil's file pool threads ("coil-files").
int pool_threads() {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* d = readdir(dir)) {
      std::string name;
      std::getline(std::ifstream(std::string("/proc/self/task/") + d->d_name + "/comm"), name);
      n += name == "coil-files";
    }
    closedir(dir);
  }
  return n;
}

// Procfs refuses RWF_NOWAIT but serves from memory: after the first refusal
// its reads run inline, never on the file pool. Checked in a child process,
// whose pools start empty (they are reset at fork).
TEST(HookFileRoute, PseudoFilesystemsAreReadInline) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int status = 0;
    {
      Scheduler s;
      s.spawn([&] {
        for (int i = 0; i < 3; ++i) {
          int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
          char buf[4096];
          ssize_t n = read(fd, buf, sizeof buf);
          ssize_t m = read(fd, buf, sizeof buf);  // the rest, or 0 at the end
          if (fd < 0 || n <= 0 || m < 0 || std::string(buf, 5) != "Name:") status |= 1;
          close(fd);
        }
      });
      s.run();
    }
    if (pool_threads() != 0) status |= 2;
    _exit(status);
  }
  int status = -1;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status) & 1, 0) << "the reads failed";
  EXPECT_EQ(WEXITSTATUS(status) & 2, 0) << "procfs reads went to the file pool";
}

}  // namespace
}  // namespace coil::test
