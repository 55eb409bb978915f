// RecordFile / OutputQueue: records are written whole or not at all, and
// whoever pushes them never waits on the output.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "loopstall/output.hpp"

using namespace loopstall;
using Clock = std::chrono::steady_clock;

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

std::string record(std::size_t i, std::size_t size) {
  std::string r = std::to_string(i) + ":";
  r.resize(size - 1, 'x');
  return r + "\n";
}

// Every line is one of record(i, size), in order, none cut.
void check_whole_records(const std::string& text, std::size_t size) {
  REQUIRE((text.empty() || text.back() == '\n'));
  std::size_t start = 0, last = 0;
  bool first = true;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string line = text.substr(start, nl + 1 - start);
    REQUIRE(line.size() == size);
    const std::size_t i = std::stoul(line);
    CHECK(line == record(i, size));
    CHECK((first || i > last));
    first = false, last = i;
  }
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ls-output-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;  // best effort
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("RecordFile: a record reaches the file at once, appended") {
  TempDir d;
  const std::string path = d.path + "/events.jsonl";
  {
    auto f = RecordFile::open(path, true);
    CHECK(f->write("first\n") == 0);
  }
  auto f = RecordFile::open(path, true);
  CHECK(f->write("second\n") == 0);
  const int fd = open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  CHECK(read_all(fd) == "first\nsecond\n");
  close(fd);
  CHECK(f->name() == path);
}

TEST_CASE("RecordFile::open says which file and why it failed") {
  try {
    RecordFile::open("/nonexistent-dir/x.jsonl", false);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "cannot open /nonexistent-dir/x.jsonl: No such file or directory");
  }
}

TEST_CASE("RecordFile hands a record larger than a pipe's atomic size to the kernel in one write") {
  // SOCK_SEQPACKET keeps write(2) boundaries: one recv() is one write.
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
  RecordFile f(sv[0], "seqpacket");
  const std::string big = std::string(20000, 'x') + "\n";
  CHECK(f.write(big) == 0);
  CHECK(f.write("second\n") == 0);
  std::string buf(65536, '\0');
  CHECK(recv(sv[1], buf.data(), buf.size(), 0) == static_cast<ssize_t>(big.size()));
  CHECK(recv(sv[1], buf.data(), buf.size(), 0) == 7);
  close(sv[0]);
  close(sv[1]);
}

TEST_CASE("RecordFile: a write cut short (file size limit) leaves the file at the last record boundary") {
  TempDir d;
  const std::string path = d.path + "/limited";
  auto f = RecordFile::open(path, true);
  REQUIRE(f->write(record(1, 3000)) == 0);
  // RLIMIT_FSIZE makes the kernel take part of a record and refuse the rest
  // (EFBIG), as a full disk does (ENOSPC).
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit lim = old;
  lim.rlim_cur = 5000;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  const int err = f->write(record(2, 3000));
  const int small = f->write(record(3, 1500));  // still fits: 4500 bytes
  REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
  std::signal(SIGXFSZ, old_handler);
  CHECK(err == EFBIG);
  CHECK(small == 0);
  const int fd = open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const std::string text = read_all(fd);
  close(fd);
  CHECK(text == record(1, 3000) + record(3, 1500));
}

TEST_CASE("OutputQueue writes every record, in order, each with one write") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
  int sndbuf = 1 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  {
    OutputQueue q(std::make_unique<RecordFile>(sv[0], "seqpacket"));
    const Writer w = q.writer();
    for (std::size_t i = 0; i < 50; ++i) w(record(i, i % 2 ? 9000 : 100));
    std::string buf(65536, '\0');
    for (std::size_t i = 0; i < 50; ++i) {
      const ssize_t n = recv(sv[1], buf.data(), buf.size(), 0);
      REQUIRE(n > 0);
      CHECK(buf.substr(0, static_cast<std::size_t>(n)) == record(i, i % 2 ? 9000 : 100));
    }
    q.close();
    const auto c = q.counts();
    CHECK(c.written == 50);
    CHECK(c.dropped_full == 0);
    CHECK(c.write_errors == 0);
  }
  close(sv[0]);
  close(sv[1]);
}

TEST_CASE("OutputQueue: a reader that stops reading never blocks push; whole records are dropped and counted") {
  int p[2];
  REQUIRE(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
  constexpr std::size_t kRecord = 1000, kPushed = 5000;  // 5 MB into a 64 KiB pipe
  constexpr std::size_t kMaxQueued = 32 * 1024;
  OutputQueue q(std::make_unique<RecordFile>(p[1], "pipe"), kMaxQueued);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < kPushed; ++i) q.push(record(i, kRecord));
  const double push_ms = ms_since(t0);
  // Nothing waited for the pipe (nobody reads it until below: a push that
  // waited would never return). The bound only catches a push that polls
  // with a timeout; generous, for a loaded box under ASan.
  CHECK(push_ms < 10000);
  const auto c = q.counts();
  CHECK(c.dropped_full >= kPushed - (65536 + kMaxQueued) / kRecord - 2);
  CHECK(c.write_errors == 0);

  // The reader comes back: what was queued is written, whole.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string text;
  const auto t1 = Clock::now();
  while (ms_since(t1) < 5000) {
    text += read_all(p[0]);
    const auto now = q.counts();
    if (now.written + now.dropped_full == kPushed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  q.close();
  text += read_all(p[0]);
  const auto end = q.counts();
  CHECK(end.written + end.dropped_full == kPushed);
  // At least what was queued when the pushes ended (the writer thread may
  // not have run during them on a busy box; then the pipe took nothing more).
  CHECK(end.written >= kMaxQueued / kRecord);
  CHECK(text.size() == end.written * kRecord);
  check_whole_records(text, kRecord);
  close(p[0]);
  close(p[1]);
}

TEST_CASE("OutputQueue::close gives up on a reader that never reads, within its drain time") {
  int p[2];
  REQUIRE(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
  OutputQueue q(std::make_unique<RecordFile>(p[1], "pipe"), 1 << 20);
  for (std::size_t i = 0; i < 200; ++i) q.push(record(i, 1000));  // 200 KB > the pipe's 64 KiB
  const auto t0 = Clock::now();
  q.close(std::chrono::milliseconds(300));
  const double close_ms = ms_since(t0);
  CHECK(close_ms >= 250);
  CHECK(close_ms < 2000);
  const auto c = q.counts();
  CHECK(c.written + c.dropped_full == 200);
  CHECK(c.dropped_full > 0);
  q.push(record(999, 1000));  // after close: dropped, never queued
  CHECK(q.counts().dropped_full == c.dropped_full + 1);
  const std::string text = read_all(p[0]);
  CHECK(text.size() == c.written * 1000);
  check_whole_records(text, 1000);
  close(p[0]);
  close(p[1]);
}

TEST_CASE("OutputQueue counts records lost to write errors (a full device)") {
  const int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  {
    OutputQueue q(std::make_unique<RecordFile>(fd, "/dev/full"));
    for (std::size_t i = 0; i < 10; ++i) q.push(record(i, 100));
    q.close();
    const auto c = q.counts();
    CHECK(c.written == 0);
    CHECK(c.dropped_full == 0);
    CHECK(c.write_errors == 10);
  }
  close(fd);
}

TEST_CASE("OutputQueue: a FIFO without a reader is opened at once and records wait in it") {
  TempDir d;
  const std::string path = d.path + "/events.fifo";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  const auto t0 = Clock::now();
  OutputQueue q(RecordFile::open(path, true));
  CHECK(ms_since(t0) < 1000);
  q.push("early\n");  // waits in the pipe until a reader comes
  const auto t1 = Clock::now();
  while (q.counts().written < 1 && ms_since(t1) < 5000) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(q.counts().written == 1);
  const int r = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(r >= 0);
  q.push("late\n");
  std::string text;
  while (text != "early\nlate\n" && ms_since(t1) < 5000) {
    text += read_all(r);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(text == "early\nlate\n");
  close(r);
}
