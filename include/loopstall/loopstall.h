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
/* User stack bytes copied with each on-CPU sample (power of two). */
#define LS_STACK_BYTES 16384
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
  LS_IDLE = 3,     /* inside epoll_wait: between iterations */
};

struct ls_syscall_slot {
  __s32 nr;
  __u32 count;
  __u64 ns;
};

/* Per loop thread state: one slot of the `loops` array (slot 0 is never
 * used; `loop_slots` maps a tid to its slot). Written by BPF, and by
 * userspace only to set up a slot it adopts (a loop found mid-iteration at
 * attach) before publishing it in `loop_slots`; userspace reads the array
 * through mmap, without syscalls, to find hung iterations and to collect
 * iteration counters. The fields every hook
 * touches come first (one cache line). */
struct ls_loop {
  __u32 tid; /* 0: free slot */
  __u32 tgid;
  __u64 iter_start_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns); 0: in epoll_wait */
  __u64 last_ts_ns;    /* last run-state change inside the iteration */
  __u64 on_cpu_ns;
  __u64 blocked_ns;
  __u64 runq_ns;
  __u32 run_state;   /* enum ls_run_state */
  __s32 cur_syscall; /* syscall nr while LS_BLOCKED */
  __u64 gc_ns;
  /* second cache line */
  __u64 gc_mark_ns;     /* inside a GC pass: when it last got the CPU */
  __u64 run_delay_mark; /* the task's sched_info.run_delay at its last switch-out */
  __u32 gc_active;
  __u32 nsyscalls; /* used slots in syscalls[] */
  /* iter_start_ns of an iteration userspace adopted already in progress
   * (its start is an estimate); 0: none. BPF never writes it, so it stops
   * matching iter_start_ns when the next iteration begins. */
  __u64 adopted_start_ns;
  struct ls_syscall_slot syscalls[LS_MAX_SYSCALLS + 1];
  /* Cumulative since the thread became a loop. */
  __u64 iterations;
  /* Time inside finished iterations by run state (utilisation: their rate;
   * the iteration in progress is in on_cpu_ns.. above). */
  __u64 busy_on_cpu_ns;
  __u64 busy_blocked_ns;
  __u64 busy_runq_ns;
  /* Socket receives (read/recv* on a socket, MSG_PEEK excluded) and the
   * bytes they returned: churn, a loop reading a few bytes per call. */
  __u64 reads;
  __u64 read_bytes;
  __u64 hist[LS_HIST_BUCKETS];
};

enum ls_event_type {
  LS_EV_STALL = 1,     /* an iteration >= threshold ended */
  LS_EV_NEW_PROC = 2,  /* unknown process called epoll_wait: classify it */
  LS_EV_LOOP_EXIT = 3, /* a loop thread exited: final counters */
  LS_EV_SAMPLE = 4,    /* a loop thread on CPU inside a long iteration */
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

/* Python frames the sampler copies (innermost first). */
#define LS_PY_MAX_FRAMES 64 /* power of two: BPF indexes with a mask */
#define LS_PY_NO_FIELD 0xffffffffu

/* How to walk the Python frames of one loop thread (`py_threads` value,
 * keyed by tid), written by userspace from its per-version offsets table
 * (daemon/python) once it found the thread's PyThreadState. BPF copies
 * (code object, instruction) pairs; userspace names them. */
struct ls_py_thread {
  __u64 tstate;
  __u32 tgid;                 /* the entry is only used by this process */
  __u32 tstate_frame;         /* frame pointer in tstate, or the cframe pointer */
  __u32 cframe_current_frame; /* LS_PY_NO_FIELD: tstate_frame is the frame pointer */
  __u32 frame_previous;
  __u32 frame_code;
  __u32 frame_instr;
  __u32 instr_is_pointer; /* else a signed 32-bit f_lasti */
  __u32 frame_owner;      /* LS_PY_NO_FIELD if the version has none */
  __u32 owner_cstack;     /* owner value of C-stack shim frames, skipped */
  __u32 pad;
};

struct ls_py_frame {
  __u64 code;
  __u64 instr;
};

enum ls_py_status {
  LS_PY_NONE = 0, /* no py_threads entry for the thread (yet) */
  LS_PY_OK = 1,   /* py_frames[0..py_nframes) are valid */
  LS_PY_FAULT = 2 /* the thread state could not be read */
};

/* x86-64 user registers at the sample (what a CFI unwinder needs). */
struct ls_user_regs {
  __u64 ip, sp, bp, bx, r12, r13, r14, r15;
};

/* LS_EV_SAMPLE: the user context of a loop thread caught on CPU by the
 * cpu-clock sampler during an iteration older than sample_after_ns. The
 * record is variable length: stack_len bytes of stack follow. */
struct ls_sample_event {
  struct ls_event_hdr hdr;
  __u64 iter_start_ns; /* which iteration (stall_id) it belongs to */
  __u64 ts_ns;
  struct ls_user_regs regs;
  __u32 py_status; /* enum ls_py_status */
  __u32 py_nframes;
  struct ls_py_frame py_frames[LS_PY_MAX_FRAMES];
  __u32 stack_len; /* valid bytes in stack[], copied from regs.sp up */
  __u32 pad;
  __u8 stack[LS_STACK_BYTES];
};

/* Counters of what the BPF side did or had to drop (`stats` array, one
 * slot per index, per-CPU). */
enum ls_stat {
  LS_STAT_RINGBUF_DROPS = 0, /* events lost: ring buffer full */
  LS_STAT_LOOPS_FULL,        /* loop threads not tracked: loops map full */
  LS_STAT_PROCS_FULL,        /* processes not tracked: procs map full */
  LS_STAT_ITERATIONS,        /* iterations measured */
  LS_STAT_STALLS,            /* stall events submitted */
  LS_STAT_SAMPLES,           /* on-CPU samples submitted */
  LS_STAT_SAMPLES_SKIPPED,   /* samples not taken: ring buffer half full */
  LS_STAT_STATE_REPAIRS,     /* switch-ins not seen, repaired when the thread ran */
  LS_STAT_MAX,
};

#endif /* LOOPSTALL_LOOPSTALL_H */
