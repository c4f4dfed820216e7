/* blocking_client: a plain blocking client (no coil): opens CONNECTIONS connections to
 * 127.0.0.1:PORT one after the other, keeps them all open, then for ROUNDS rounds writes a
 * distinct lower-case message on each and reads back exactly its upper-cased echo, one
 * connection at a time. Prints "verified N echoes over C connections" and exits 0 only if every
 * echo was right. With HOLD_FILE set, it writes the word "open" to that file once every
 * connection is open and waits until the file is removed (so a test can look at the server
 * while the connections exist).
 *
 *   blocking_client PORT CONNECTIONS ROUNDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int read_exactly(int fd, char* buf, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static void hold(const char* file) {
  FILE* f = fopen(file, "w");
  if (!f) return;
  fputs("open\n", f);
  fclose(f);
  while (access(file, F_OK) == 0) usleep(20 * 1000);
}

int main(int argc, char** argv) {
  if (argc != 4) return fprintf(stderr, "usage: blocking_client PORT CONNECTIONS ROUNDS\n"), 2;
  int port = atoi(argv[1]), count = atoi(argv[2]), rounds = atoi(argv[3]);
  int* fds = calloc((size_t)count, sizeof *fds);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < count; ++i) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr*)&addr, sizeof addr) != 0)
      return fprintf(stderr, "blocking_client: connection %d: %s\n", i, strerror(errno)), 1;
  }
  if (getenv("HOLD_FILE")) hold(getenv("HOLD_FILE"));
  long verified = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < count; ++i) {
      char msg[64], want[64], got[64];
      int n = snprintf(msg, sizeof msg, "echo %d of round %d", i, r);
      for (int k = 0; k < n; ++k) want[k] = (char)toupper((unsigned char)msg[k]);
      if (write(fds[i], msg, (size_t)n) != n || read_exactly(fds[i], got, (size_t)n) != 0 ||
          memcmp(got, want, (size_t)n) != 0)
        return fprintf(stderr, "blocking_client: bad echo on connection %d round %d\n", i, r), 1;
      ++verified;
    }
  }
  for (int i = 0; i < count; ++i) close(fds[i]);
  printf("verified %ld echoes over %d connections\n", verified, count);
  return 0;
}
