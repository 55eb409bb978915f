// Where records (JSON Lines events, text lines) go: a file, a FIFO, stdout.
// Detection never waits on an output: records are handed to a bounded queue
// that a writer thread drains, and a record that does not fit is dropped
// whole and counted. A record is written whole or not at all: a reader that
// tails the output never sees half a line.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "loopstall/sink.hpp"

namespace loopstall {

// One output's file descriptor, written one whole record at a time.
class RecordFile {
 public:
  // Opens PATH ("-" = stdout) for writing, appending or truncating. A FIFO is
  // opened without waiting for a reader; pipes, FIFOs and terminals get a
  // non-blocking description of their own (so a stopped reader never blocks
  // a write), sockets are sent to with MSG_DONTWAIT. Throws
  // std::runtime_error("cannot open PATH: reason").
  static std::unique_ptr<RecordFile> open(const std::string& path, bool append);
  // Uses fd as it is (not closed by the destructor); `name` is for messages.
  RecordFile(int fd, std::string name);
  ~RecordFile();
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

  // Writes rec whole, with one write(2) when the kernel takes it at once.
  // Returns 0, or the errno that stopped it: then a regular file is cut back
  // to the record's start (disk full leaves no half line). While a pipe or
  // socket is full it waits, asking keep_waiting() every 100 ms; false gives
  // up (EAGAIN).
  int write(std::string_view rec, const std::function<bool()>& keep_waiting = {});
  const std::string& name() const { return name_; }
  // The terminal's width when this is a terminal (80 if it does not say), else 0.
  int terminal_columns() const;

 private:
  enum class Kind { File, Socket, Stream };
  RecordFile(int fd, std::string name, bool owned);
  int cut_back(std::size_t written);

  int fd_;
  std::string name_;
  bool owned_;
  Kind kind_ = Kind::File;
};

// A RecordFile behind a bounded queue and a writer thread of its own.
class OutputQueue {
 public:
  static constexpr std::size_t kDefaultMaxBytes = 4u << 20;
  explicit OutputQueue(std::unique_ptr<RecordFile> file, std::size_t max_bytes = kDefaultMaxBytes);
  // close() with a 2 s drain.
  ~OutputQueue();
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  // Never waits on the output: queues rec, or drops it (counted) when the
  // queue would exceed max_bytes or close() has begun.
  void push(std::string_view rec);
  // push() as a Writer for a Sink.
  Writer writer();
  // Gives the writer thread up to `drain` to write what is queued, then
  // stops it; what is left counts as dropped. Idempotent.
  void close(std::chrono::milliseconds drain = std::chrono::seconds(2));

  struct Counts {
    std::uint64_t written = 0;
    std::uint64_t dropped_full = 0;  // the output did not keep up
    std::uint64_t write_errors = 0;  // lost to a failing write (disk full, reader gone)
  };
  Counts counts() const;
  const std::string& name() const { return file_->name(); }
  int terminal_columns() const { return file_->terminal_columns(); }

 private:
  void run();
  bool keep_waiting();

  std::unique_ptr<RecordFile> file_;
  const std::size_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;     // records queued, or closing
  std::condition_variable idle_;   // queue drained
  std::deque<std::string> queue_;  // guarded by mu_
  std::size_t queued_bytes_ = 0;   // guarded by mu_; includes the record being written
  bool closing_ = false, busy_ = false;
  std::atomic<bool> abandon_{false};
  std::atomic<std::uint64_t> written_{0}, dropped_full_{0}, write_errors_{0};
  bool said_full_ = false;  // guarded by mu_
  int said_errno_ = 0;      // writer thread only
  std::thread thread_;
};

}  // namespace loopstall
