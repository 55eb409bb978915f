// The fuzz input as a regular file at a path, for the readers that open one
// (libelf, zlib): a memfd, rewritten for each input, so nothing touches disk.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

inline const std::string& fuzz_input_file(const std::uint8_t* data, std::size_t size) {
  static const int fd = ::memfd_create("loopstall-fuzz-input", MFD_CLOEXEC);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  return path;
}
