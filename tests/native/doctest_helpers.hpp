// doctest-bound helpers shared by the native test files.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace loopstall::native::test {

// Live tests need root (process_vm_readv on other users' processes,
// /proc/PID/map_files, ptrace). Outside CI they are skipped with a message;
// under CI=true not being root fails.
inline bool have_root_or_skip(const char* what) {
  if (::geteuid() == 0) return true;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") {
    FAIL_CHECK(std::string(what) << ": needs root, and CI=true does not allow skipping");
  } else {
    MESSAGE("SKIPPED " << std::string(what) << ": needs root (process_vm_readv, /proc/PID/map_files, ptrace)");
  }
  return false;
}

// Prints the frames when LOOPSTALL_TEST_VERBOSE is set.
inline void show_frames(const char* title, const std::vector<UnwoundFrame>& frames) {
  if (std::getenv("LOOPSTALL_TEST_VERBOSE") != nullptr) MESSAGE(std::string(title) << ":\n" << format_frames(frames));
}

}  // namespace loopstall::native::test
