// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopstall: measure every event-loop iteration of every loop thread.
 *
 * An iteration runs from leaving epoll_wait to entering it again. Inside an
 * iteration sched_switch/sched_wakeup split the time into on-CPU, blocked
 * (per syscall) and runnable-waiting. Iterations >= threshold_ns go to the
 * ring buffer; every iteration feeds per-thread counters that userspace reads
 * from the `loops` map.
 *
 * Cost model: sched_switch and sched_wakeup fire for every task on the host,
 * so they first test one bit in `loop_bits` (an array lookup the verifier
 * inlines) and touch no hash map unless the task is a loop thread. The epoll
 * tracepoints fire only for those syscalls; for threads that are not loops
 * yet they look up the process once in `procs`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "loopstall/loopstall.h"

#ifndef E2BIG
#define E2BIG 7
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Iterations at least this long are reported. Userspace may change it at
 * run time (it lives in .data, not .rodata). */
volatile __u64 threshold_ns = 100000000ULL;

/* Process decisions of userspace (enum ls_proc_state), keyed by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} procs SEC(".maps");

/* Loop threads, keyed by tid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct ls_loop);
} loops SEC(".maps");

/* One bit per tid: is it a loop thread? Sized from pid_max at load time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} loop_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Template for new loops map entries (too big for the BPF stack). */
static const struct ls_loop zero_loop;

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline bool is_loop_tid(__u32 tid)
{
	__u32 word = tid / 64;
	__u64 *bits = bpf_map_lookup_elem(&loop_bits, &word);

	return bits && (*bits & (1ULL << (tid % 64)));
}

static __always_inline void set_loop_bit(__u32 tid, bool on)
{
	__u32 word = tid / 64;
	__u64 *bits = bpf_map_lookup_elem(&loop_bits, &word);

	if (!bits)
		return;
	if (on)
		__sync_fetch_and_or(bits, 1ULL << (tid % 64));
	else
		__sync_fetch_and_and(bits, ~(1ULL << (tid % 64)));
}

static __always_inline __u32 hist_bucket(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 b = 0;

	/* b = number of significant bits of us, i.e. floor(log2(us)) + 1. */
	if (us >> 32) {
		b += 32;
		us >>= 32;
	}
	if (us >> 16) {
		b += 16;
		us >>= 16;
	}
	if (us >> 8) {
		b += 8;
		us >>= 8;
	}
	if (us >> 4) {
		b += 4;
		us >>= 4;
	}
	if (us >> 2) {
		b += 2;
		us >>= 2;
	}
	if (us >> 1) {
		b += 1;
		us >>= 1;
	}
	b += us;
	return b < LS_HIST_BUCKETS ? b : LS_HIST_BUCKETS - 1;
}

static __always_inline void add_blocked(struct ls_loop *l, __u64 ns)
{
	__s32 nr = l->cur_syscall;
	__u32 n = l->nsyscalls;
	int i;

	l->blocked_ns += ns;
#pragma unroll
	for (i = 0; i < LS_MAX_SYSCALLS; i++) {
		if (i >= n)
			break;
		if (l->syscalls[i].nr == nr) {
			l->syscalls[i].ns += ns;
			l->syscalls[i].count++;
			return;
		}
	}
	if (n < LS_MAX_SYSCALLS) {
		l->syscalls[n & (LS_MAX_SYSCALLS - 1)].nr = nr;
		l->syscalls[n & (LS_MAX_SYSCALLS - 1)].ns = ns;
		l->syscalls[n & (LS_MAX_SYSCALLS - 1)].count = 1;
		l->nsyscalls = n + 1;
		return;
	}
	l->syscalls[LS_MAX_SYSCALLS].nr = LS_SYSCALL_OTHER;
	l->syscalls[LS_MAX_SYSCALLS].ns += ns;
	l->syscalls[LS_MAX_SYSCALLS].count++;
}

static __always_inline void begin_iteration(struct ls_loop *l, __u64 now)
{
	l->iter_start_ns = now;
	l->last_ts_ns = now;
	l->on_cpu_ns = 0;
	l->blocked_ns = 0;
	l->runq_ns = 0;
	l->gc_ns = 0;
	l->run_state = LS_RUNNING;
	l->nsyscalls = 0;
	l->syscalls[LS_MAX_SYSCALLS].nr = LS_SYSCALL_OTHER;
	l->syscalls[LS_MAX_SYSCALLS].ns = 0;
	l->syscalls[LS_MAX_SYSCALLS].count = 0;
}

static __always_inline int on_epoll_exit(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct ls_loop *l;
	__u32 *state;

	if (is_loop_tid(tid)) {
		l = bpf_map_lookup_elem(&loops, &tid);
		if (l)
			begin_iteration(l, bpf_ktime_get_ns());
		return 0;
	}

	state = bpf_map_lookup_elem(&procs, &tgid);
	if (!state) {
		__u32 pending = LS_PROC_PENDING;
		struct ls_new_proc_event *e;
		long err = bpf_map_update_elem(&procs, &tgid, &pending, BPF_NOEXIST);

		if (err == -E2BIG) {
			stat_inc(LS_STAT_PROCS_FULL);
			return 0;
		}
		if (err)
			return 0; /* another thread of it got there first */
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			/* userspace also sweeps procs for PENDING entries */
			stat_inc(LS_STAT_RINGBUF_DROPS);
			return 0;
		}
		e->hdr.type = LS_EV_NEW_PROC;
		e->hdr.tid = tid;
		e->hdr.tgid = tgid;
		e->hdr.pad = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
		return 0;
	}
	if (*state != LS_PROC_WATCH)
		return 0;

	/* First epoll_wait return of a thread of a watched process. */
	if (bpf_map_update_elem(&loops, &tid, &zero_loop, BPF_NOEXIST)) {
		stat_inc(LS_STAT_LOOPS_FULL);
		return 0;
	}
	l = bpf_map_lookup_elem(&loops, &tid);
	if (!l)
		return 0;
	l->tid = tid;
	l->tgid = tgid;
	set_loop_bit(tid, true);
	begin_iteration(l, bpf_ktime_get_ns());
	return 0;
}

static __always_inline int on_epoll_enter(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ls_stall_event *e;
	struct ls_loop *l;
	__u64 now, start, dur;

	if (!is_loop_tid(tid))
		return 0;
	l = bpf_map_lookup_elem(&loops, &tid);
	if (!l || !l->iter_start_ns)
		return 0;

	now = bpf_ktime_get_ns();
	start = l->iter_start_ns;
	dur = now - start;
	l->on_cpu_ns += now - l->last_ts_ns;
	l->last_ts_ns = now;
	l->iterations++;
	l->hist[hist_bucket(dur) & (LS_HIST_BUCKETS - 1)]++;
	/* Cleared before submit: a userspace scan that sees iter_start_ns == 0
	 * knows the final event is already in the ring buffer. */
	l->iter_start_ns = 0;
	stat_inc(LS_STAT_ITERATIONS);
	if (dur < threshold_ns)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(LS_STAT_RINGBUF_DROPS);
		return 0;
	}
	e->hdr.type = LS_EV_STALL;
	e->hdr.tid = tid;
	e->hdr.tgid = l->tgid;
	e->hdr.pad = 0;
	e->end_ns = now;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(&e->loop, l, sizeof(e->loop));
	e->loop.iter_start_ns = start;
	bpf_ringbuf_submit(e, 0);
	stat_inc(LS_STAT_STALLS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_epoll_wait")
int epoll_wait_exit(void *ctx)
{
	return on_epoll_exit();
}
SEC("tracepoint/syscalls/sys_exit_epoll_pwait")
int epoll_pwait_exit(void *ctx)
{
	return on_epoll_exit();
}
SEC("tracepoint/syscalls/sys_exit_epoll_pwait2")
int epoll_pwait2_exit(void *ctx)
{
	return on_epoll_exit();
}
SEC("tracepoint/syscalls/sys_enter_epoll_wait")
int epoll_wait_enter(void *ctx)
{
	return on_epoll_enter();
}
SEC("tracepoint/syscalls/sys_enter_epoll_pwait")
int epoll_pwait_enter(void *ctx)
{
	return on_epoll_enter();
}
SEC("tracepoint/syscalls/sys_enter_epoll_pwait2")
int epoll_pwait2_enter(void *ctx)
{
	return on_epoll_enter();
}

/* Syscall a task is sleeping in, read at switch-out from its saved user
 * registers. Outside a syscall (e.g. a page fault) this is not a syscall
 * number; userspace names unknown numbers as such. */
static __always_inline __s32 blocked_syscall(struct task_struct *t)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	long nr;

	if (!regs)
		return LS_SYSCALL_NONE;
	nr = BPF_CORE_READ(regs, orig_ax);
	return nr < 0 ? LS_SYSCALL_NONE : (__s32)nr;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 ptid = prev->pid, ntid = next->pid;
	bool prev_loop = is_loop_tid(ptid), next_loop = is_loop_tid(ntid);
	struct ls_loop *l;
	__u64 now;

	if (!prev_loop && !next_loop)
		return 0;
	now = bpf_ktime_get_ns();

	if (prev_loop) {
		l = bpf_map_lookup_elem(&loops, &ptid);
		if (l && l->iter_start_ns) {
			l->on_cpu_ns += now - l->last_ts_ns;
			l->last_ts_ns = now;
			/* preempt: runnable whatever prev_state says. */
			if (preempt || prev_state == 0) {
				l->run_state = LS_RUNNABLE;
			} else {
				l->run_state = LS_BLOCKED;
				l->cur_syscall = blocked_syscall(prev);
			}
		}
	}
	if (next_loop) {
		l = bpf_map_lookup_elem(&loops, &ntid);
		if (l && l->iter_start_ns) {
			if (l->run_state == LS_RUNNABLE)
				l->runq_ns += now - l->last_ts_ns;
			else if (l->run_state == LS_BLOCKED) /* wakeup not seen */
				add_blocked(l, now - l->last_ts_ns);
			l->last_ts_ns = now;
			l->run_state = LS_RUNNING;
		}
	}
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	__u32 tid = p->pid;
	struct ls_loop *l;
	__u64 now;

	if (!is_loop_tid(tid))
		return 0;
	l = bpf_map_lookup_elem(&loops, &tid);
	if (!l || !l->iter_start_ns || l->run_state != LS_BLOCKED)
		return 0;
	now = bpf_ktime_get_ns();
	add_blocked(l, now - l->last_ts_ns);
	l->last_ts_ns = now;
	l->run_state = LS_RUNNABLE;
	return 0;
}

static __always_inline void forget_loop(__u32 tid, bool report)
{
	struct ls_stall_event *e;
	struct ls_loop *l;

	if (!is_loop_tid(tid))
		return;
	l = bpf_map_lookup_elem(&loops, &tid);
	if (l && report) {
		/* Hand the final counters to userspace before they vanish. */
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			e->hdr.type = LS_EV_LOOP_EXIT;
			e->hdr.tid = tid;
			e->hdr.tgid = l->tgid;
			e->hdr.pad = 0;
			e->end_ns = bpf_ktime_get_ns();
			__builtin_memset(e->comm, 0, sizeof(e->comm));
			__builtin_memcpy(&e->loop, l, sizeof(e->loop));
			bpf_ringbuf_submit(e, 0);
		} else {
			stat_inc(LS_STAT_RINGBUF_DROPS);
		}
	}
	bpf_map_delete_elem(&loops, &tid);
	set_loop_bit(tid, false);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = p->tgid;

	forget_loop(p->pid, true);
	if (group_dead)
		bpf_map_delete_elem(&procs, &tgid);
	return 0;
}

/* A new program image: classify the process again. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;

	forget_loop(p->pid, true);
	if ((__u32)old_pid != p->pid)
		forget_loop(old_pid, true);
	bpf_map_delete_elem(&procs, &tgid);
	return 0;
}
