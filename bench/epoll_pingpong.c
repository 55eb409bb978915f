// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * epoll ping-pong: the tightest event loop there is, for measuring what
 * loopstall adds to one loop iteration.
 *
 * Two threads, one socketpair; each thread owns one end and its own epoll
 * instance. One iteration = epoll_wait + read(1 byte) + write(1 byte). One
 * byte bounces forever, so the two loops run strictly in turn and the wall
 * time of an iteration is everything on its path (syscalls, wakeup, context
 * switch, and any BPF program attached to them).
 *
 * Prints one line, counting iterations of both threads after --warmup
 * seconds, for --duration seconds:
 *   iterations_per_sec=<wall rate> iterations=<n> seconds=<wall s>
 *   cpu_seconds=<CPU time of the process> cpu_ns_per_iter=<cpu s / n * 1e9>
 * cpu_ns_per_iter is the robust number on a shared machine: when both
 * threads share one CPU that CPU is never idle while they run, so wall time
 * per iteration equals CPU time per iteration unless other tasks steal the
 * CPU -- and stolen time is not counted in the process' CPU time. The cost
 * of BPF programs run on the loop's own syscalls and context switches is
 * counted (they run in the context of the loop's threads).
 *
 * With --report-ms N it instead runs until killed and prints, every N ms,
 *   sample <monotonic ns> <iterations so far> <process CPU ns so far>
 * so that a driver can switch tracers on and off around one long-running
 * loop and cut the samples into windows.
 *
 * --spin getppid|epoll replaces the ping-pong by one thread (pinned to CPU A)
 * calling getppid() or epoll_wait(timeout 0) on an empty epoll set in a loop:
 * the price of syscall hooks per call, without context switches.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct loop {
  int fd;
  int ep;
  int cpu; /* -1: not pinned */
  _Alignas(64) _Atomic uint64_t iterations;
  char pad[56];
};

static void die(const char *what) {
  fprintf(stderr, "epoll_pingpong: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void pin(int cpu) {
  cpu_set_t set;

  if (cpu < 0) return;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set)) die("pthread_setaffinity_np");
}

static void *run(void *arg) {
  struct loop *l = arg;
  struct epoll_event ev;
  char b;

  pin(l->cpu);
  for (;;) {
    int n = epoll_wait(l->ep, &ev, 1, -1);

    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    if (n == 0) continue;
    if (read(l->fd, &b, 1) != 1) die("read");
    if (write(l->fd, &b, 1) != 1) die("write");
    atomic_store_explicit(&l->iterations, atomic_load_explicit(&l->iterations, memory_order_relaxed) + 1,
                          memory_order_relaxed);
  }
  return NULL;
}

enum spin_kind { SPIN_NONE, SPIN_GETPPID, SPIN_EPOLL };

static void *spin(void *arg) {
  struct loop *l = arg;
  struct epoll_event ev;
  uint64_t n = 0;

  pin(l->cpu);
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (l->fd == SPIN_GETPPID)
        syscall(SYS_getppid); /* not cached by libc */
      else
        epoll_wait(l->ep, &ev, 1, 0);
    }
    n += 64;
    atomic_store_explicit(&l->iterations, n, memory_order_relaxed);
  }
  return NULL;
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
  struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};

  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
}

static double cpu_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t total(struct loop *l) {
  return atomic_load_explicit(&l[0].iterations, memory_order_relaxed) +
         atomic_load_explicit(&l[1].iterations, memory_order_relaxed);
}

static void usage(void) {
  fprintf(stderr,
          "usage: epoll_pingpong [--duration S] [--warmup S] [--cpus A,B] [--report-ms N]\n"
          "                      [--spin getppid|epoll]\n"
          "  --cpus A,B     pin the two loop threads to CPUs A and B (A may equal B)\n"
          "  --report-ms N  run until killed, print cumulative samples every N ms\n"
          "  --spin KIND    one thread calling getppid() or epoll_wait(0) in a loop\n");
  exit(2);
}

int main(int argc, char **argv) {
  static struct loop loops[2];
  double duration = 3.0, warmup = 0.5;
  int cpu_a = -1, cpu_b = -1, report_ms = 0, spin_kind = SPIN_NONE, sv[2], i;
  pthread_t th[2];
  struct epoll_event ev = {.events = EPOLLIN};
  uint64_t n0, n1;
  double t0, t1, c0, c1;

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--duration") && i + 1 < argc)
      duration = atof(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
      warmup = atof(argv[++i]);
    else if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
      if (sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b) != 2) usage();
    } else if (!strcmp(argv[i], "--report-ms") && i + 1 < argc)
      report_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--spin") && i + 1 < argc) {
      i++;
      if (!strcmp(argv[i], "getppid"))
        spin_kind = SPIN_GETPPID;
      else if (!strcmp(argv[i], "epoll"))
        spin_kind = SPIN_EPOLL;
      else
        usage();
    } else
      usage();
  }
  if (duration <= 0 || warmup < 0) usage();

  if (spin_kind != SPIN_NONE) {
    loops[0].fd = spin_kind;
    loops[0].cpu = cpu_a;
    loops[0].ep = epoll_create1(0);
    if (loops[0].ep < 0) die("epoll_create1");
    if (pthread_create(&th[0], NULL, spin, &loops[0])) die("pthread_create");
    goto measure;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
  for (i = 0; i < 2; i++) {
    loops[i].fd = sv[i];
    loops[i].cpu = i ? cpu_b : cpu_a;
    loops[i].ep = epoll_create1(0);
    if (loops[i].ep < 0) die("epoll_create1");
    ev.data.fd = sv[i];
    if (epoll_ctl(loops[i].ep, EPOLL_CTL_ADD, sv[i], &ev)) die("epoll_ctl");
  }
  for (i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, run, &loops[i])) die("pthread_create");
  if (write(sv[1], "x", 1) != 1) /* serve the ball: thread 0 goes first */
    die("write");
measure:

  if (report_ms > 0) {
    for (;;) {
      printf("sample %.0f %llu %.0f\n", now_s() * 1e9, (unsigned long long)total(loops), cpu_s() * 1e9);
      if (fflush(stdout)) _exit(0); /* reader gone */
      sleep_s(report_ms / 1000.0);
    }
  }
  sleep_s(warmup);
  n0 = total(loops);
  t0 = now_s();
  c0 = cpu_s();
  sleep_s(duration);
  n1 = total(loops);
  t1 = now_s();
  c1 = cpu_s();
  printf("iterations_per_sec=%.1f iterations=%llu seconds=%.3f cpu_seconds=%.3f cpu_ns_per_iter=%.1f\n",
         (double)(n1 - n0) / (t1 - t0), (unsigned long long)(n1 - n0), t1 - t0, c1 - c0,
         n1 > n0 ? (c1 - c0) * 1e9 / (double)(n1 - n0) : 0.0);
  fflush(stdout);
  _exit(0); /* the loop threads never return */
}
