// What `--version` prints: the build (version, git revision, build type),
// the libbpf it runs with and the kernel features it finds here.
#pragma once

#include <string>

namespace loopstall {

// Several lines, the first "PROGRAM VERSION (git REV, BUILD_TYPE)".
std::string version_text(const std::string& program);

}  // namespace loopstall
