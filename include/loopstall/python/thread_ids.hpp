// Mapping pthread_t to kernel tids for CPython < 3.11, whose thread states keep
// only pthread_self(). On glibc a pthread_t is the address of the thread's
// struct pthread, which holds the kernel tid at a fixed, glibc-build-specific
// offset (720 on Debian 12's glibc 2.36). Two ways to learn it at run time:
//  1. glibc publishes it for libthread_db: the rodata symbol
//     `_thread_db_pthread_tid` = {bits, count, offset} (uint32 each) in libc.so.
//  2. Failing that, search the struct pthread of every Python thread for an
//     int32 equal to one of the process's live tids; the offset must agree for
//     all threads, one of which must be the main thread (tid == pid).
// The struct holds the tid as the process knows it (its own PID namespace, see
// procfs.hpp): so must the pid and tids compared with it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>

#include "loopstall/process_memory.hpp"
#include "loopstall/python/offsets.hpp"

namespace loopstall::python {

// Way 1: decode a `_thread_db_pthread_tid` descriptor read from the target.
std::optional<std::uint32_t> pthread_tid_offset_from_descriptor(const Memory& mem, std::uint64_t descriptor_addr);

// Way 2: the heuristic search over the thread list. pid and live_tids as the
// process knows them (live_tids() below).
std::optional<std::uint32_t> pthread_tid_offset_by_search(const Memory& mem, std::uint64_t runtime, const PyOffsets& o,
                                                          pid_t pid, const std::set<std::uint32_t>& live_tids);

// The tids of a live process (/proc/PID/task) as it knows them: its own PID
// namespace's, which differ from ours in a container.
std::set<std::uint32_t> live_tids(pid_t pid);

}  // namespace loopstall::python
