#include "loopstall/syscalls.hpp"

#include <algorithm>
#include <iterator>

#include "loopstall/loopstall.h"

namespace loopstall {
namespace {

struct Entry {
  int nr;
  const char* name;
};

constexpr Entry kTable[] = {
#include "syscall_table.inc"
};

}  // namespace

std::string syscall_name(int nr) {
  if (nr == LS_SYSCALL_NONE) return "unknown";
  if (nr == LS_SYSCALL_OTHER) return "other";
  // The uapi header lists numbers in order, but do not rely on it.
  const auto* it = std::find_if(std::begin(kTable), std::end(kTable), [nr](const Entry& e) { return e.nr == nr; });
  if (it != std::end(kTable)) return it->name;
  return "syscall_" + std::to_string(nr);
}

}  // namespace loopstall
