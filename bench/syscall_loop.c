/* Host tax: a process that is no event loop and makes syscalls as fast as it
 * can (getppid, or read of 1 byte from /dev/zero). Runs --seconds and prints
 * "<syscalls> <wall ns> <cpu ns>". Loopstall's raw syscall tracepoints make
 * every syscall of every task on the host take the slow path, whether the
 * task is watched or not; this measures what that costs such a process. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  int use_read = argc > 2 && strcmp(argv[2], "read") == 0;
  if (seconds <= 0 || (argc > 2 && !use_read && strcmp(argv[2], "getppid") != 0)) {
    fprintf(stderr, "usage: %s SECONDS [getppid|read]\n", argv[0]);
    return 2;
  }
  int fd = open("/dev/zero", O_RDONLY);
  if (fd < 0) {
    perror("/dev/zero");
    return 1;
  }
  char b;
  long long w0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
  long long end = w0 + (long long)(seconds * 1e9), n = 0;
  for (;;) {
    for (int i = 0; i < 1000; i++) { /* clock reads out of the measured rate */
      if (use_read)
        (void)!read(fd, &b, 1);
      else
        syscall(SYS_getppid);
    }
    n += 1000;
    if (ns(CLOCK_MONOTONIC) >= end) break;
  }
  long long w1 = ns(CLOCK_MONOTONIC), c1 = ns(CLOCK_PROCESS_CPUTIME_ID);
  printf("%lld %lld %lld\n", n, w1 - w0, c1 - c0);
  return 0;
}
