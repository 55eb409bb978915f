// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Minimal programs on the hooks loopstall uses -- and on the alternatives --
 * to price each hook mechanism on its own (bench/run_bench.sh --only hooks).
 * ls_hookcost attaches a chosen subset. None of them does real work: what is
 * measured is what the kernel spends getting into and out of a program on
 * that hook, plus the cheapest filter loopstall could use there.
 */
// linux/bpf.h must come first (it defines __u32 & co).
// clang-format off
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NR_EPOLL_WAIT 232
#define PT_REGS_ORIG_AX 120 /* offsetof(struct pt_regs, orig_ax), x86-64 */

/* Like loopstall's loop_bits: nobody is a loop here, so filters reject. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u64);
} bits SEC(".maps");

static __always_inline int is_loop(__u32 tid) {
  __u32 word = tid / 64;
  __u64 *b = bpf_map_lookup_elem(&bits, &word);

  return b && (*b & (1ULL << (tid % 64)));
}

/* Per-syscall perf tracepoints: what loopstall uses for epoll_wait. */
SEC("tracepoint/syscalls/sys_enter_epoll_wait")
int tp_epoll_enter(void *ctx) {
  return 0;
}
SEC("tracepoint/syscalls/sys_exit_epoll_wait")
int tp_epoll_exit(void *ctx) {
  return 0;
}

/* A syscall the ping-pong never makes: prices only the syscall slow path
 * that any syscall tracepoint switches on for every task. */
SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_getppid(void *ctx) {
  return 0;
}

/* Alternative: the raw syscall tracepoints, which fire for every syscall,
 * filtered in the program (enter: by id; exit: by the loop bit first). */
SEC("raw_tp/sys_enter")
int raw_sys_enter(__u64 *ctx) {
  if (ctx[1] != NR_EPOLL_WAIT) return 0;
  return is_loop((__u32)bpf_get_current_pid_tgid());
}

SEC("raw_tp/sys_exit")
int raw_sys_exit(__u64 *ctx) {
  long nr = 0;

  if (!is_loop((__u32)bpf_get_current_pid_tgid())) return 0;
  bpf_probe_read_kernel(&nr, sizeof(nr), (void *)(ctx[0] + PT_REGS_ORIG_AX));
  return nr == NR_EPOLL_WAIT;
}

/* Scheduler hooks: BTF-typed (loopstall) vs raw, empty and with the loop
 * bit filter loopstall runs for every task. */
SEC("tp_btf/sched_switch")
int btf_switch(__u64 *ctx) {
  return 0;
}
SEC("tp_btf/sched_wakeup")
int btf_wakeup(__u64 *ctx) {
  return 0;
}
SEC("raw_tp/sched_switch")
int raw_switch(__u64 *ctx) {
  return 0;
}
SEC("raw_tp/sched_wakeup")
int raw_wakeup(__u64 *ctx) {
  return 0;
}
