// A recorded snapshot: registers, the stack bytes the unwind needed, the
// process's code mappings and the build-ids of the mapped files, plus the
// frames the unwinder produced when it was recorded. Replayed offline against
// the same system libraries.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loopstall/native/snapshot.hpp"
#include "loopstall/stall.hpp"

namespace loopstall::native::test {

struct Recording {
  std::string description;
  StackSnapshot snap;
  std::string maps;                                            // maps lines of the code modules
  std::vector<std::pair<std::string, std::string>> build_ids;  // path, build-id
  std::vector<NativeFrame> expected;
};

bool save_recording(const std::string& path, const Recording& rec);
std::optional<Recording> load_recording(const std::string& path);

// Mapped files whose build-id differs from the recorded one (or are missing).
std::vector<std::string> mismatched_build_ids(const Recording& rec);

}  // namespace loopstall::native::test
