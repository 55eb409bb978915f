/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared between bpf/loopstall.bpf.c and the userspace that owns it
 * (daemon/engine). Plain C, fixed-width types only: the same bytes are
 * written by BPF and read by C++.
 */
#ifndef LOOPSTALL_LOOPSTALL_H
#define LOOPSTALL_LOOPSTALL_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Distinct blocking syscalls remembered per iteration; the rest go to the
 * overflow slot (nr = LS_SYSCALL_OTHER). */
#define LS_MAX_SYSCALLS 8
/* log2(duration in microseconds) buckets of the per-thread histogram:
 * bucket i holds iterations with 2^(i-1) <= us < 2^i (bucket 0: < 1 us). */
#define LS_HIST_BUCKETS 32 /* power of two: BPF indexes with a mask */
/* Blocked outside any syscall (page fault, ...) or in more syscalls than
 * LS_MAX_SYSCALLS. */
#define LS_SYSCALL_NONE (-1)
#define LS_SYSCALL_OTHER (-2)

/* What userspace decided about a process (procs map value). */
enum ls_proc_state {
  LS_PROC_PENDING = 0, /* seen calling epoll_wait, userspace classifying */
  LS_PROC_WATCH = 1,   /* its epoll_wait threads are loops */
  LS_PROC_IGNORE = 2,  /* not a process we watch */
};

/* Where a loop thread is inside an iteration. */
enum ls_run_state {
  LS_RUNNING = 0,  /* on a CPU */
  LS_BLOCKED = 1,  /* switched out sleeping (in syscall cur_syscall) */
  LS_RUNNABLE = 2, /* preempted or woken, waiting for a CPU */
};

struct ls_syscall_slot {
  __s32 nr;
  __u32 count;
  __u64 ns;
};

/* Per loop thread state: value of the `loops` hash map, keyed by tid.
 * Written only by BPF; userspace reads it to find hung iterations and to
 * collect iteration counters. */
struct ls_loop {
  __u32 tid;
  __u32 tgid;
  __u64 iter_start_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns); 0: in epoll_wait */
  __u64 last_ts_ns;    /* last run-state change inside the iteration */
  __u64 on_cpu_ns;
  __u64 blocked_ns;
  __u64 runq_ns;
  __u64 gc_ns;
  __u64 gc_start_ns; /* non-zero while inside a GC pass */
  __u32 run_state;   /* enum ls_run_state */
  __s32 cur_syscall; /* syscall nr while LS_BLOCKED */
  __u32 nsyscalls;   /* used slots in syscalls[] */
  __u32 pad;
  struct ls_syscall_slot syscalls[LS_MAX_SYSCALLS + 1];
  /* Cumulative since the thread became a loop. */
  __u64 iterations;
  __u64 hist[LS_HIST_BUCKETS];
};

enum ls_event_type {
  LS_EV_STALL = 1,     /* an iteration >= threshold ended */
  LS_EV_NEW_PROC = 2,  /* unknown process called epoll_wait: classify it */
  LS_EV_LOOP_EXIT = 3, /* a loop thread exited: final counters */
};

struct ls_event_hdr {
  __u32 type;
  __u32 tid;
  __u32 tgid;
  __u32 pad;
};

/* LS_EV_STALL and LS_EV_LOOP_EXIT carry the loop state as it was at the
 * end of the iteration (LS_EV_STALL) or at exit (LS_EV_LOOP_EXIT). */
struct ls_stall_event {
  struct ls_event_hdr hdr;
  __u64 end_ns; /* CLOCK_MONOTONIC when epoll_wait was entered again */
  char comm[16];
  struct ls_loop loop;
};

struct ls_new_proc_event {
  struct ls_event_hdr hdr;
  char comm[16];
};

/* Counters of what the BPF side did or had to drop (`stats` array, one
 * slot per index, per-CPU). */
enum ls_stat {
  LS_STAT_RINGBUF_DROPS = 0, /* events lost: ring buffer full */
  LS_STAT_LOOPS_FULL,        /* loop threads not tracked: loops map full */
  LS_STAT_PROCS_FULL,        /* processes not tracked: procs map full */
  LS_STAT_ITERATIONS,        /* iterations measured */
  LS_STAT_STALLS,            /* stall events submitted */
  LS_STAT_MAX,
};

#endif /* LOOPSTALL_LOOPSTALL_H */
