// syscall_name: x86-64 numbers to the kernel's names.
#include <doctest/doctest.h>

#include "loopstall/loopstall.h"
#include "loopstall/syscalls.hpp"

using loopstall::syscall_name;

TEST_CASE("syscall_name: table entries") {
  CHECK(syscall_name(0) == "read");
  CHECK(syscall_name(1) == "write");
  CHECK(syscall_name(7) == "poll");
  CHECK(syscall_name(202) == "futex");
  CHECK(syscall_name(230) == "clock_nanosleep");
  CHECK(syscall_name(232) == "epoll_wait");
  CHECK(syscall_name(281) == "epoll_pwait");
}

TEST_CASE("syscall_name: the BPF side's pseudo numbers") {
  CHECK(syscall_name(LS_SYSCALL_NONE) == "unknown");
  CHECK(syscall_name(LS_SYSCALL_OTHER) == "other");
}

TEST_CASE("syscall_name: numbers the table does not know") {
  CHECK(syscall_name(99999) == "syscall_99999");
  CHECK(syscall_name(-7) == "syscall_-7");
  // x32 ABI numbers have bit 30 set: not in the x86-64 table.
  CHECK(syscall_name(0x40000000 + 202) == "syscall_1073742026");
}
