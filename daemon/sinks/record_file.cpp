#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "loopstall/output.hpp"

namespace loopstall {
namespace {

// A description of our own, non-blocking, for a pipe, FIFO or terminal we
// were handed (stdout): setting O_NONBLOCK on the inherited one would change
// it for the shell or whoever else shares it. -1 when the kernel refuses
// (a pipe without reader, a terminal of another user).
int reopen_nonblocking(int fd) {
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  return ::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
}

}  // namespace

RecordFile::RecordFile(int fd, std::string name) : RecordFile(fd, std::move(name), false) {}

RecordFile::RecordFile(int fd, std::string name, bool owned) : fd_(fd), name_(std::move(name)), owned_(owned) {
  struct stat st {};
  if (fstat(fd_, &st) == 0 && !S_ISREG(st.st_mode)) kind_ = S_ISSOCK(st.st_mode) ? Kind::Socket : Kind::Stream;
}

RecordFile::~RecordFile() {
  if (owned_) ::close(fd_);
}

std::unique_ptr<RecordFile> RecordFile::open(const std::string& path, bool append) {
  if (path == "-") {
    auto f = std::unique_ptr<RecordFile>(new RecordFile(STDOUT_FILENO, "stdout", false));
    if (f->kind_ == Kind::Stream) {
      const int fd = reopen_nonblocking(STDOUT_FILENO);
      // Without a description of our own, stdout stays blocking: only the
      // writer thread waits on it.
      if (fd >= 0) f = std::unique_ptr<RecordFile>(new RecordFile(fd, "stdout", true));
    }
    return f;
  }
  // O_NONBLOCK: open(2) of a FIFO must not wait for a reader. Without one,
  // O_WRONLY fails (ENXIO); O_RDWR (Linux) then opens it at once, and the
  // pipe keeps what is written until a reader comes, up to its capacity.
  const int flags = O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  int fd = ::open(path.c_str(), flags, 0666);
  if (fd < 0 && errno == ENXIO) fd = ::open(path.c_str(), (flags & ~O_WRONLY) | O_RDWR, 0666);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  auto f = std::unique_ptr<RecordFile>(new RecordFile(fd, path, true));
  if (f->kind_ == Kind::File) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return f;
}

int RecordFile::write(std::string_view rec, const std::function<bool()>& keep_waiting) {
  std::size_t done = 0;
  while (done < rec.size()) {
    const char* p = rec.data() + done;
    const std::size_t left = rec.size() - done;
    // The first try hands the whole record to the kernel in one call: a
    // SOCK_SEQPACKET or datagram reader gets it as one message.
    const ssize_t n = kind_ == Kind::Socket ? ::send(fd_, p, left, MSG_DONTWAIT | MSG_NOSIGNAL) : ::write(fd_, p, left);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    const int err = n == 0 ? EIO : errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      // A pipe or socket reader that is not reading. A record the kernel
      // took in part is finished once it drains, so the reader gets whole
      // lines; only abandoning (shutdown) can cut it.
      pollfd pfd{fd_, POLLOUT, 0};
      ::poll(&pfd, 1, 100);
      if (keep_waiting && !keep_waiting()) return EAGAIN;
      continue;
    }
    if (kind_ == Kind::File && done > 0) cut_back(done);
    return err;
  }
  return 0;
}

int RecordFile::terminal_columns() const {
  if (!isatty(fd_)) return 0;
  winsize ws{};
  return ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

// Disk full in the middle of a record: remove the part that was written, so
// the file ends at a record boundary. (Single writer: the part is the end.)
int RecordFile::cut_back(std::size_t written) {
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  if (end < static_cast<off_t>(written)) return -1;
  const off_t start = end - static_cast<off_t>(written);
  if (::ftruncate(fd_, start) != 0) return -1;
  return ::lseek(fd_, start, SEEK_SET) < 0 ? -1 : 0;
}

}  // namespace loopstall
