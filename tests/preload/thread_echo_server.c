/* thread_echo_server: the seeds' multi-thread server, plain blocking POSIX with one pthread per
 * connection, compiled without any coil header or library. Under coil-run each thread is a green
 * thread, so it holds thousands of connections on one OS thread.
 *
 *   thread_echo_server PORT   (0: the kernel chooses) listens on 127.0.0.1, prints
 *                             "listening on port N", and echoes what each client sends,
 *                             upper-cased, until the client closes. Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void* serve(void* arg) {
  int fd = (int)(intptr_t)arg;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) buf[i] = (char)toupper((unsigned char)buf[i]);
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(fd, buf + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) goto out;
      done += w;
    }
  }
out:
  close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 2) return fprintf(stderr, "usage: thread_echo_server PORT\n"), 2;
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(lfd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr*)&addr, &len) != 0)
    return perror("thread_echo_server: listen"), 1;
  printf("listening on port %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024); /* natively too: 10k threads of 8 MB is a lot */
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("thread_echo_server: accept");
      if (errno == EMFILE || errno == ENFILE) {
        sleep(1);
        continue;
      }
      return 1;
    }
    pthread_t t;
    int rc = pthread_create(&t, &attr, serve, (void*)(intptr_t)fd);
    if (rc != 0) {
      fprintf(stderr, "thread_echo_server: pthread_create: %s\n", strerror(rc));
      close(fd);
    }
  }
}
