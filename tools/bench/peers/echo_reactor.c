// echo_reactor: the hand-written epoll reactor that coil's echo_server is measured against.
//
// `echo_reactor PORT` (0: the kernel chooses) listens on 127.0.0.1, prints `listening on port N`
// and upper-cases and echoes what each client sends, in one thread, without coil. It is the
// seeds' reactor done competently: level-triggered epoll, so one read() per readiness and no
// read that only returns EAGAIN; the bytes read are written back at once, from one shared
// buffer; only what the kernel does not take is copied into the connection's own pending buffer,
// and only then is EPOLLOUT asked for (reads stop until it drains). Per echoed message that is
// one read() and one write(), plus a share of one epoll_wait() per batch of ready connections.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kBufferSize = 16 * 1024, kMaxEvents = 1024 };

// Connection holds what the kernel did not yet take of an echo; indexed by fd in conns.
typedef struct {
  char* pending;
  size_t len;
} Connection;

static Connection* conns;
static size_t conn_count;
static int epfd;

static void die(const char* what) {
  fprintf(stderr, "echo_reactor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void drop(int fd) {
  free(conns[fd].pending);
  conns[fd] = (Connection){0};
  close(fd);  // also leaves the epoll set
}

// flush() writes n bytes of buf; keeps the rest in conns[fd] and waits for EPOLLOUT (or, once
// drained, for EPOLLIN again). Returns 0, or -1 after dropping the connection.
static int flush(int fd, const char* buf, size_t n) {
  ssize_t w = write(fd, buf, n);
  if (w < 0 && errno != EAGAIN && errno != EINTR) return drop(fd), -1;
  size_t left = n - (size_t)(w < 0 ? 0 : w);
  Connection* c = &conns[fd];
  int was_waiting = c->len > 0;
  if (left > 0 && buf != c->pending) {
    c->pending = malloc(left);
    if (!c->pending) return drop(fd), -1;
  }
  if (left > 0) memmove(c->pending, buf + (n - left), left);
  c->len = left;
  if (left == 0 && was_waiting) free(c->pending), c->pending = NULL;
  if ((left > 0) != was_waiting) {
    struct epoll_event ev = {.events = left > 0 ? EPOLLOUT : EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0) return drop(fd), -1;
  }
  return 0;
}

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
      if (errno == EMFILE || errno == ENFILE) return perror("echo_reactor: accept");
      die("accept");
    }
    if ((size_t)fd >= conn_count) {
      size_t n = conn_count ? conn_count : 1024;
      while (n <= (size_t)fd) n *= 2;
      Connection* grown = realloc(conns, n * sizeof *conns);
      if (!grown) die("realloc");
      memset(grown + conn_count, 0, (n - conn_count) * sizeof *conns);
      conns = grown, conn_count = n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
}

int main(int argc, char** argv) {
  if (argc != 2) return fprintf(stderr, "usage: echo_reactor PORT\n"), 2;
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(lfd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr*)&addr, &len) != 0)
    die("listen");
  if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd}, events[kMaxEvents];
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) != 0) die("epoll_ctl");
  printf("listening on port %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  static char buf[kBufferSize];
  for (;;) {
    int n = epoll_wait(epfd, events, kMaxEvents, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        accept_all(lfd);
      } else if (conns[fd].len > 0) {  // EPOLLOUT (or an error) while an echo is pending
        flush(fd, conns[fd].pending, conns[fd].len);
      } else {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) {
          if (r == 0 || (errno != EAGAIN && errno != EINTR)) drop(fd);
          continue;
        }
        for (ssize_t k = 0; k < r; ++k) buf[k] = (char)toupper((unsigned char)buf[k]);
        flush(fd, buf, (size_t)r);
      }
    }
  }
}
