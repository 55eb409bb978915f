// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loopstall: measure every event-loop iteration of every loop thread.
 *
 * An iteration runs from leaving epoll_wait to entering it again. Only the
 * *entry* to epoll_wait is hooked: it closes the running iteration and
 * provisionally opens the next one. If the thread then sleeps inside
 * epoll_wait, sched_switch sees it switch out with an epoll syscall in
 * orig_ax (the loop is idle) and the next iteration really starts when the
 * thread gets the CPU back. One syscall tracepoint per iteration instead of
 * two: each tracepoint hit costs more than all of our program bodies.
 *
 * Inside an iteration sched_switch/sched_wakeup split the time into on-CPU,
 * blocked (per syscall) and runnable-waiting; USDT gc__start/gc__done mark
 * the part of on-CPU time spent in CPython's GC; a cpu-clock perf event
 * samples the user context of loop threads inside long iterations.
 * Iterations >= threshold_ns go to the ring buffer; every iteration feeds
 * per-thread counters that userspace reads from the mmap'ed `loops` array.
 *
 * Cost model: sched_switch and sched_wakeup fire for every task on the host,
 * so they first look up the tid in `loop_slots` (an array the verifier
 * inlines) and touch nothing else unless the task is a loop thread. The
 * epoll hook fires only for epoll_wait; for threads of processes userspace
 * decided to ignore it stops at one bit of `proc_ignore`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "loopstall/loopstall.h"

#ifndef E2BIG
#define E2BIG 7
#endif
#define MSG_PEEK 2 /* include/linux/socket.h: a macro, not in vmlinux.h */

/* x86-64 syscall numbers of the epoll waits (the only ones that end an
 * iteration). */
#define NR_EPOLL_WAIT 232
#define NR_EPOLL_PWAIT 281
#define NR_EPOLL_PWAIT2 441

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Iterations at least this long are reported. Set by userspace before load
 * and changed at run time (.data, not .rodata); the values come from
 * include/loopstall/tuning.hpp, the parameters' one owner. Until set:
 * nothing reported, nothing sampled (and nonzero keeps them in .data). */
volatile __u64 threshold_ns = ~0ULL;
/* The sampler records loop threads whose iteration is at least this old
 * (Tuning::evidence_after_ns: below the threshold, so a stall just over it
 * still gets samples). */
volatile __u64 sample_after_ns = ~0ULL;
/* One past the highest slot ever handed out: userspace scans [1, hwm). */
__u32 slots_hwm = 1;

/* Process decisions of userspace (enum ls_proc_state), keyed by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} procs SEC(".maps");

/* One bit per tgid: userspace decided to ignore the process. Lets the epoll
 * hook skip the procs hash for the common case. Userspace sets bits through
 * mmap; BPF clears them on exec and exit. Sized from pid_max at load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} proc_ignore SEC(".maps");

/* Loop thread state, one slot per loop thread (slot 0 unused). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ls_loop);
} loops SEC(".maps");

/* Free slots of `loops`, filled by userspace before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 4096);
	__type(value, __u32);
} free_slots SEC(".maps");

/* tid -> slot in `loops` (0: not a loop thread), four u16 per element.
 * Sized from pid_max at load time. Userspace publishes the slots it adopts
 * through mmap; both sides set a slot with a compare-and-swap of the whole
 * element, so neither loses the other's update of a neighbouring tid. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} loop_slots SEC(".maps");

/* tid -> how to walk its Python frames (userspace fills it per loop thread
 * of a CPython process). Looked up only by the sampler. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ls_py_thread);
} py_threads SEC(".maps");

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

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

/* The loop_slots element holding tid's slot number, or NULL for a tid
 * beyond pid_max. */
static __always_inline __u64 *slot_word(__u32 tid)
{
	__u32 word = tid / 4;

	return bpf_map_lookup_elem(&loop_slots, &word);
}

/* Where tid's slot number lives, or NULL for a tid beyond pid_max. */
static __always_inline __u16 *slot_ref(__u32 tid)
{
	__u64 *w = slot_word(tid);

	return w ? (__u16 *)w + (tid & 3) : 0;
}

/* The loop state of tid, or NULL if tid is not a loop thread. */
static __always_inline struct ls_loop *loop_of(__u32 tid)
{
	__u16 *ref = slot_ref(tid);
	__u32 slot;

	if (!ref || !*ref)
		return 0;
	slot = *ref;
	return bpf_map_lookup_elem(&loops, &slot);
}

static __always_inline bool proc_ignored(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&proc_ignore, &word);

	return bits && (*bits & (1ULL << (tgid % 64)));
}

static __always_inline void unignore_proc(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&proc_ignore, &word);

	if (bits && (*bits & (1ULL << (tgid % 64))))
		__sync_fetch_and_and(bits, ~(1ULL << (tgid % 64)));
}

static __always_inline __u32 hist_bucket(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 b = 0, s;

	/* b = number of significant bits of us, i.e. floor(log2(us)) + 1:
	 * a binary search, unrolled (shifts 32, 16, ..., 1). */
#pragma unroll
	for (s = 32; s; s >>= 1) {
		if (us >> s) {
			b += s;
			us >>= s;
		}
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
	l->gc_active = 0;
	l->run_state = LS_RUNNING;
	l->nsyscalls = 0;
	l->syscalls[LS_MAX_SYSCALLS].nr = LS_SYSCALL_OTHER;
	l->syscalls[LS_MAX_SYSCALLS].ns = 0;
	l->syscalls[LS_MAX_SYSCALLS].count = 0;
}

/* The thread got a CPU at `now`: close its off-CPU interval as the state
 * recorded it. */
static __always_inline void mark_running(struct ls_loop *l, __u64 now)
{
	if (l->run_state == LS_RUNNABLE)
		l->runq_ns += now - l->last_ts_ns;
	else if (l->run_state == LS_BLOCKED) /* wakeup not seen */
		add_blocked(l, now - l->last_ts_ns);
	l->last_ts_ns = now;
	l->run_state = LS_RUNNING;
	if (l->gc_active)
		l->gc_mark_ns = now;
}

/* The scheduler's running total of the task's time waiting on a runqueue
 * (CONFIG_SCHED_INFO; 0 without it). It advances when the task gets a
 * CPU, whether or not that switch was traced. */
static __always_inline __u64 run_delay_of(struct task_struct *t)
{
	if (!bpf_core_field_exists(t->sched_info))
		return 0;
	return t->sched_info.run_delay;
}

/* How long after its RUNNABLE switch-out the current task waited for a
 * CPU, at most `gap`; all of it where the kernel does not keep run_delay. */
static __always_inline __u64 runq_part(struct ls_loop *l, __u64 gap)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 waited;

	if (!bpf_core_field_exists(t->sched_info))
		return gap;
	waited = run_delay_of(t) - l->run_delay_mark;
	return waited < gap ? waited : gap;
}

/* Called in the loop thread's own context (it is on a CPU), with `now`
 * after last_ts_ns: any state but RUNNING means its switch-in was not seen
 * (some kernels do not trace switches away from some tasks: sandbox
 * agents). The missed switch-in is replayed at the time it must have
 * happened; the on-CPU time since then is counted as for any switch-in.
 * RUNNABLE: it waited run_delay's increase after the switch-out. IDLE: it
 * came back from epoll_wait, and the iteration began when this run on the
 * CPU did -- the runtime since the scheduler picked it (fresh at a
 * switch-out, up to one tick stale elsewhere) dates it. BLOCKED (the
 * wakeup unseen too): no better time than now. Counted: it should stay
 * rare. */
static __always_inline void resync_running(struct ls_loop *l, __u64 now)
{
	struct task_struct *t;
	__u64 ran;

	if (l->run_state == LS_RUNNING)
		return;
	if (l->run_state == LS_RUNNABLE) {
		mark_running(l, l->last_ts_ns + runq_part(l, now - l->last_ts_ns));
	} else if (l->run_state == LS_IDLE) {
		t = bpf_get_current_task_btf();
		ran = t->se.sum_exec_runtime - t->se.prev_sum_exec_runtime;
		begin_iteration(l, ran < now ? now - ran : now);
	} else {
		mark_running(l, now);
	}
	stat_inc(LS_STAT_STATE_REPAIRS);
}

/* Closes the running iteration at `now` (the thread enters epoll_wait). */
static __always_inline void end_iteration(struct ls_loop *l, __u32 tid, __u64 now)
{
	struct ls_stall_event *e;
	__u64 start = l->iter_start_ns, dur;

	if (!start)
		return;
	dur = now - start;
	l->on_cpu_ns += now - l->last_ts_ns;
	l->last_ts_ns = now;
	if (l->gc_active)
		l->gc_ns += now - l->gc_mark_ns;
	l->iterations++;
	l->hist[hist_bucket(dur) & (LS_HIST_BUCKETS - 1)]++;
	l->busy_on_cpu_ns += l->on_cpu_ns;
	l->busy_blocked_ns += l->blocked_ns;
	l->busy_runq_ns += l->runq_ns;
	stat_inc(LS_STAT_ITERATIONS);
	if (dur < threshold_ns)
		return;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(LS_STAT_RINGBUF_DROPS);
		return;
	}
	e->hdr.type = LS_EV_STALL;
	e->hdr.tid = tid;
	e->hdr.tgid = l->tgid;
	e->hdr.pad = 0;
	e->end_ns = now;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(&e->loop, l, sizeof(e->loop));
	bpf_ringbuf_submit(e, 0);
	stat_inc(LS_STAT_STALLS);
}

/* Hands out a free slot of `loops` to tid (first epoll_wait of a thread of
 * a watched process, or of the first thread of an undecided one). */
static __always_inline struct ls_loop *new_loop(__u32 tid, __u32 tgid)
{
	__u64 *w = slot_word(tid);
	__u32 shift = (tid & 3) * 16;
	struct ls_loop *l;
	__u32 slot, hwm;
	__u64 old;
	int i;

	if (!w)
		return 0;
	if (bpf_map_pop_elem(&free_slots, &slot) || slot == 0 || slot > 0xffff) {
		stat_inc(LS_STAT_LOOPS_FULL);
		return 0;
	}
	l = bpf_map_lookup_elem(&loops, &slot);
	if (!l) {
		stat_inc(LS_STAT_LOOPS_FULL);
		return 0;
	}
	__builtin_memset(l, 0, sizeof(*l));
	l->tid = tid;
	l->tgid = tgid;
	/* Raise the high-water mark userspace scans up to. */
	for (i = 0; i < 8; i++) {
		hwm = slots_hwm;
		if (hwm > slot || __sync_val_compare_and_swap(&slots_hwm, hwm, slot + 1) == hwm)
			break;
	}
	/* Publish, unless userspace adopted the thread meanwhile. */
	for (i = 0; i < 4; i++) {
		old = *w;
		if ((old >> shift) & 0xffff)
			break;
		if (__sync_val_compare_and_swap(w, old, old | ((__u64)slot << shift)) == old)
			return l;
	}
	l->tid = 0;
	bpf_map_push_elem(&free_slots, &slot, 0);
	return 0;
}

/* An unknown process called epoll_wait: ask userspace about it once.
 * Returns true for the thread that asked. */
static __always_inline bool new_proc(__u32 tid, __u32 tgid)
{
	__u32 pending = LS_PROC_PENDING;
	struct ls_new_proc_event *e;
	long err = bpf_map_update_elem(&procs, &tgid, &pending, BPF_NOEXIST);

	if (err == -E2BIG) {
		stat_inc(LS_STAT_PROCS_FULL);
		return false;
	}
	if (err)
		return false; /* another thread of it got there first */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		/* userspace also sweeps procs for PENDING entries */
		stat_inc(LS_STAT_RINGBUF_DROPS);
		return true;
	}
	e->hdr.type = LS_EV_NEW_PROC;
	e->hdr.tid = tid;
	e->hdr.tgid = tgid;
	e->hdr.pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return true;
}

static __always_inline int on_epoll_enter(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct ls_loop *l = loop_of(tid);
	__u32 *state;
	__u64 now;

	if (l) {
		now = bpf_ktime_get_ns();
		resync_running(l, now);
		end_iteration(l, tid, now);
		/* Provisional: if the thread sleeps in epoll_wait, sched_switch
		 * restarts the iteration when it gets the CPU back. */
		begin_iteration(l, now);
		return 0;
	}
	if (proc_ignored(tgid))
		return 0;
	state = bpf_map_lookup_elem(&procs, &tgid);
	if (!state) {
		/* The asking thread is a loop from now on, whatever userspace
		 * decides later: the iteration after a process's first
		 * epoll_wait is measured (a worker that hangs on its first
		 * request). Userspace frees the slot if it ignores the process. */
		if (!new_proc(tid, tgid))
			return 0;
	} else if (*state != LS_PROC_WATCH) {
		return 0;
	}
	l = new_loop(tid, tgid);
	if (l)
		begin_iteration(l, bpf_ktime_get_ns());
	return 0;
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

/* The syscall a task is in, read at switch-out from its saved user
 * registers. Outside a syscall (e.g. a page fault or an interrupt) this is
 * not a syscall number; userspace names unknown numbers as such. */
static __always_inline __s32 current_syscall(struct task_struct *t)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	long nr;

	if (!regs)
		return LS_SYSCALL_NONE;
	nr = regs->orig_ax; /* a BTF pointer: a direct (fault-safe) load, no helper call */
	return nr < 0 ? LS_SYSCALL_NONE : (__s32)nr;
}

static __always_inline bool is_epoll_wait(__s32 nr)
{
	return nr == NR_EPOLL_WAIT || nr == NR_EPOLL_PWAIT || nr == NR_EPOLL_PWAIT2;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct ls_loop *pl = loop_of(prev->pid), *nl = loop_of(next->pid);
	__u64 now = 0;
	__s32 nr;

	/* Tested one by one: the verifier refuses OR-ing two pointers. A
	 * switch-out in IDLE: it left epoll_wait unseen (resync_running). */
	if (pl && (pl->iter_start_ns || pl->run_state == LS_IDLE)) {
		nr = current_syscall(prev);
		if (is_epoll_wait(nr)) {
			/* Waiting for events: the provisional iteration opened
			 * at epoll_wait entry has not begun (no clock read). */
			pl->iter_start_ns = 0;
			pl->run_state = LS_IDLE;
		} else {
			now = bpf_ktime_get_ns();
			resync_running(pl, now); /* prev is current here */
			pl->on_cpu_ns += now - pl->last_ts_ns;
			pl->last_ts_ns = now;
			if (pl->gc_active)
				pl->gc_ns += now - pl->gc_mark_ns;
			/* preempt: runnable whatever prev_state says. */
			if (preempt || prev_state == 0) {
				pl->run_state = LS_RUNNABLE;
				pl->run_delay_mark = run_delay_of(prev);
			} else {
				pl->run_state = LS_BLOCKED;
				pl->cur_syscall = nr;
			}
		}
	}
	if (nl && (nl->run_state == LS_IDLE || nl->iter_start_ns)) {
		if (!now)
			now = bpf_ktime_get_ns();
		if (nl->run_state == LS_IDLE) /* back from epoll_wait: it starts now */
			begin_iteration(nl, now);
		else
			mark_running(nl, now);
	}
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	struct ls_loop *l = loop_of(p->pid);
	__u64 now;

	if (!l || l->run_state != LS_BLOCKED || !l->iter_start_ns)
		return 0;
	now = bpf_ktime_get_ns();
	add_blocked(l, now - l->last_ts_ns);
	l->last_ts_ns = now;
	l->run_state = LS_RUNNABLE;
	l->run_delay_mark = run_delay_of(p);
	return 0;
}

/* Every socket receive on the host (sock_recvmsg: read, recv, recvfrom,
 * recvmsg on a socket): one slot lookup, and for a loop thread two adds.
 * A tp_btf hook fires only for socket receives, where /proc/TID/io would
 * count only read(2) and a syscall-exit tracepoint would tax every read. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	struct ls_loop *l = loop_of((__u32)bpf_get_current_pid_tgid());

	if (!l || (flags & MSG_PEEK))
		return 0;
	l->reads++;
	if (ret > 0)
		l->read_bytes += ret;
	return 0;
}

/* CPython's GC, where the interpreter has USDT probes (attached per binary,
 * system-wide). GC time is on-CPU time: it stops counting while the thread
 * is switched out. */
/* The current thread's loop state with its run state brought up to `now`
 * (in the thread's context: an iteration begun unseen must exist before its
 * GC can count), or NULL if it is not a loop thread. */
static __always_inline struct ls_loop *current_loop_resynced(__u64 *now)
{
	struct ls_loop *l = loop_of((__u32)bpf_get_current_pid_tgid());

	if (!l)
		return 0;
	*now = bpf_ktime_get_ns();
	resync_running(l, *now);
	return l;
}

SEC("usdt")
int BPF_USDT(gc_start, int generation)
{
	__u64 now;
	struct ls_loop *l = current_loop_resynced(&now);

	if (!l || !l->iter_start_ns)
		return 0;
	l->gc_mark_ns = now;
	l->gc_active = 1;
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_done, long collected)
{
	__u64 now;
	struct ls_loop *l = current_loop_resynced(&now);

	if (!l || !l->iter_start_ns || !l->gc_active)
		return 0;
	l->gc_ns += now - l->gc_mark_ns;
	l->gc_active = 0;
	return 0;
}

static __always_inline void copy_user_regs(struct ls_user_regs *dst, struct pt_regs *src)
{
	dst->ip = src->ip;
	dst->sp = src->sp;
	dst->bp = src->bp;
	dst->bx = src->bx;
	dst->r12 = src->r12;
	dst->r13 = src->r13;
	dst->r14 = src->r14;
	dst->r15 = src->r15;
}

/* Scratch space of the Python frame walk (per CPU: the sampler runs in
 * interrupt context, one at a time per CPU). */
struct py_walk {
	__u32 n;
	__u32 pad;
	struct ls_py_frame frames[LS_PY_MAX_FRAMES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_walk);
} py_scratch SEC(".maps");

/* What one step of the walk needs: plain scalars, so the bpf_loop callback
 * is verified once instead of once per unrolled frame. */
struct py_walk_ctx {
	__u64 frame;
	struct ls_py_thread t;
	struct py_walk *out;
};

static long py_walk_step(__u32 i, struct py_walk_ctx *c)
{
	struct py_walk *w = c->out;
	__u64 frame = c->frame, code = 0, prev = 0, instr = 0;
	__s32 lasti = -1;
	__u8 owner = 0;

	if (!frame || !w || w->n >= LS_PY_MAX_FRAMES)
		return 1;
	if (bpf_probe_read_user(&code, sizeof(code), (void *)(frame + c->t.frame_code)) ||
	    bpf_probe_read_user(&prev, sizeof(prev), (void *)(frame + c->t.frame_previous)))
		return 1;
	if (c->t.frame_owner != LS_PY_NO_FIELD &&
	    bpf_probe_read_user(&owner, sizeof(owner), (void *)(frame + c->t.frame_owner)))
		return 1;
	c->frame = prev;
	if (c->t.frame_owner != LS_PY_NO_FIELD && owner == c->t.owner_cstack)
		return 0; /* C-stack shim (3.12+): not a Python frame */
	if (c->t.instr_is_pointer) {
		bpf_probe_read_user(&instr, sizeof(instr), (void *)(frame + c->t.frame_instr));
	} else {
		bpf_probe_read_user(&lasti, sizeof(lasti), (void *)(frame + c->t.frame_instr));
		instr = (__u64)(__s64)lasti;
	}
	w->frames[w->n & (LS_PY_MAX_FRAMES - 1)].code = code;
	w->frames[w->n & (LS_PY_MAX_FRAMES - 1)].instr = instr;
	w->n++;
	return 0;
}

/* The running Python frames of the sampled thread, copied as (code,
 * instruction) pairs while the thread is still in them: userspace reading
 * them later could see the next function already. Every read is checked;
 * a bad pointer ends the walk. C-stack shim frames count towards the bound
 * but are not copied. */
static __always_inline void copy_py_frames(struct ls_sample_event *e, __u32 tgid, __u32 tid)
{
	struct ls_py_thread *pt = bpf_map_lookup_elem(&py_threads, &tid);
	struct py_walk_ctx c = {};
	__u32 zero = 0;
	__u64 ptr = 0;

	e->py_nframes = 0;
	if (!pt || pt->tgid != tgid) {
		e->py_status = LS_PY_NONE;
		return;
	}
	e->py_status = LS_PY_FAULT;
	c.t = *pt;
	c.out = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!c.out)
		return;
	c.out->n = 0;
	if (bpf_probe_read_user(&ptr, sizeof(ptr), (void *)(c.t.tstate + c.t.tstate_frame)))
		return;
	if (c.t.cframe_current_frame != LS_PY_NO_FIELD) {
		if (!ptr || bpf_probe_read_user(&c.frame, sizeof(c.frame),
						(void *)(ptr + c.t.cframe_current_frame)))
			return;
	} else {
		c.frame = ptr;
	}
	bpf_loop(2 * LS_PY_MAX_FRAMES, py_walk_step, &c, 0);
	e->py_status = LS_PY_OK;
	e->py_nframes = c.out->n;
	bpf_probe_read_kernel(e->py_frames, sizeof(e->py_frames), c.out->frames);
}

/* cpu-clock sampler: the user context of a loop thread that is on CPU
 * inside an iteration older than sample_after_ns. */
SEC("perf_event")
int sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u32 tid = t->pid;
	struct ls_loop *l = loop_of(tid);
	struct ls_sample_event *e;
	struct pt_regs *regs;
	__u64 now, start, sp;
	__u32 len;

	if (!l)
		return 0;
	now = bpf_ktime_get_ns();
	/* The tick interrupted this thread: it is running, whatever the
	 * recorded state says. */
	resync_running(l, now);
	start = l->iter_start_ns;
	if (!start || now - start < sample_after_ns)
		return 0;
	/* Samples are evidence, stalls are the product: samples may fill at
	 * most half of the ring, so a slow reader never loses stall events to
	 * them. */
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) * 2 >
	    bpf_ringbuf_query(&events, BPF_RB_RING_SIZE)) {
		stat_inc(LS_STAT_SAMPLES_SKIPPED);
		return 0;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(LS_STAT_SAMPLES_SKIPPED);
		return 0;
	}
	e->hdr.type = LS_EV_SAMPLE;
	e->hdr.tid = tid;
	e->hdr.tgid = l->tgid;
	e->hdr.pad = 0;
	e->iter_start_ns = start;
	e->ts_ns = now;
	/* The user registers, whether the tick interrupted user mode or the
	 * kernel: both entries save them at the top of the task's stack. */
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	copy_user_regs(&e->regs, regs);
	sp = e->regs.sp;
	e->pad = 0;
	copy_py_frames(e, l->tgid, tid);
	/* The stack may end (top of the mapping) before LS_STACK_BYTES. */
	if (!bpf_probe_read_user(e->stack, LS_STACK_BYTES, (void *)sp))
		len = LS_STACK_BYTES;
	else if (!bpf_probe_read_user(e->stack, LS_STACK_BYTES / 4, (void *)sp))
		len = LS_STACK_BYTES / 4;
	else if (!bpf_probe_read_user(e->stack, 1024, (void *)sp))
		len = 1024;
	else
		len = 0;
	e->stack_len = len;
	bpf_ringbuf_submit(e, 0);
	stat_inc(LS_STAT_SAMPLES);
	return 0;
}

static __always_inline void forget_loop(__u32 tid, bool report)
{
	struct ls_stall_event *e;
	__u16 *ref = slot_ref(tid);
	struct ls_loop *l;
	__u32 slot;

	if (!ref || !*ref)
		return;
	slot = *ref;
	*ref = 0;
	l = bpf_map_lookup_elem(&loops, &slot);
	if (!l)
		return;
	if (report) {
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
	l->iter_start_ns = 0;
	l->tid = 0;
	bpf_map_push_elem(&free_slots, &slot, 0);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = p->tgid;

	forget_loop(p->pid, true);
	if (group_dead) {
		bpf_map_delete_elem(&procs, &tgid);
		unignore_proc(tgid);
	}
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
	unignore_proc(tgid);
	return 0;
}
