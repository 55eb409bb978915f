/*
 * fake_loop: a non-Python epoll loop that stalls once (usleep inside an iteration).
 *
 * The tracer must not report it by default (it only reports Python loops) and must report it
 * with loop "epoll" under --all-loops. Same stdout protocol as the Python workloads.
 *
 * usage: fake_loop [STALL_MS [WARMUP_MS [AFTER_MS]]]   (defaults 300 1000 1000)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clock_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long stall_ms = argc > 1 ? atol(argv[1]) : 300;
	long warmup_ms = argc > 2 ? atol(argv[2]) : 1000;
	long after_ms = argc > 3 ? atol(argv[3]) : 1000;
	struct epoll_event ev;
	int epfd = epoll_create1(0);
	long long t0, elapsed_ms;
	int stalled = 0;

	if (epfd < 0) {
		perror("epoll_create1");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	epoll_wait(epfd, &ev, 1, 0); /* the loop has started */
	printf("READY %d\n", getpid());
	t0 = now_ns(CLOCK_MONOTONIC);
	for (;;) {
		/* An empty interest set: every wait is a 10 ms timeout, i.e. one idle iteration. */
		epoll_wait(epfd, &ev, 1, 10);
		elapsed_ms = (now_ns(CLOCK_MONOTONIC) - t0) / 1000000;
		if (!stalled && elapsed_ms >= warmup_ms) {
			printf("STALL_START %lld\n", now_ns(CLOCK_REALTIME));
			usleep(stall_ms * 1000);
			printf("STALL_END %lld\n", now_ns(CLOCK_REALTIME));
			stalled = 1;
		}
		if (elapsed_ms >= warmup_ms + stall_ms + after_ms)
			return 0;
	}
}
