#include <cerrno>
#include <cstdio>
#include <cstring>

#include "loopstall/output.hpp"
#include "loopstall/phase_times.hpp"

namespace loopstall {

OutputQueue::OutputQueue(std::unique_ptr<RecordFile> file, std::size_t max_bytes)
    : file_(std::move(file)), max_bytes_(max_bytes), thread_([this] { run(); }) {}

OutputQueue::~OutputQueue() {
  close();
}

void OutputQueue::push(std::string_view rec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closing_ || queued_bytes_ + rec.size() > max_bytes_) {
    // Whole records only; the writer thread says so (this thread must not
    // wait on stderr either: it may be the same stuck pipe).
    dropped_full_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.emplace_back(rec);
  queued_bytes_ += rec.size();
  cv_.notify_one();
}

Writer OutputQueue::writer() {
  return [this](std::string_view s) { push(s); };
}

void OutputQueue::close(std::chrono::milliseconds drain) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    closing_ = true;
    cv_.notify_all();
    idle_.wait_for(lock, drain, [this] { return queue_.empty() && !busy_; });
    abandon_.store(true);
    dropped_full_.fetch_add(queue_.size(), std::memory_order_relaxed);
    queue_.clear();
    cv_.notify_all();
  }
  thread_.join();
  const Counts c = counts();
  if (c.dropped_full)
    std::fprintf(stderr, "loopstall: warning: %llu records not written to %s: it did not keep up\n",
                 static_cast<unsigned long long>(c.dropped_full), name().c_str());
}

OutputQueue::Counts OutputQueue::counts() const {
  return {written_.load(), dropped_full_.load(), write_errors_.load()};
}

// Asked while the output is full: say once that records are being dropped
// (from this thread: the detector's must not wait on a stuck stderr).
bool OutputQueue::keep_waiting() {
  if (abandon_.load()) return false;
  bool say = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    say = dropped_full_.load() > 0 && !said_full_;
    said_full_ = said_full_ || say;
  }
  if (say)
    std::fprintf(
        stderr,
        "loopstall: warning: %s is not keeping up (its %zu KiB queue is full): dropping whole records (counted) "
        "until it catches up\n",
        name().c_str(), max_bytes_ >> 10);
  return true;
}

void OutputQueue::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
    if (queue_.empty() || abandon_.load()) break;
    std::string rec = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    keep_waiting();  // says so if records were dropped while the last one was written
    int err = 0;
    {
      const PhaseTimer timer(Phase::kWrite);
      err = file_->write(rec, [this] { return keep_waiting(); });
    }
    if (err == 0) {
      written_.fetch_add(1, std::memory_order_relaxed);
    } else if (err == EAGAIN && abandon_.load()) {
      dropped_full_.fetch_add(1, std::memory_order_relaxed);
    } else {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      if (err != said_errno_) {  // once per kind of failure, not per record
        said_errno_ = err;
        std::fprintf(stderr,
                     "loopstall: warning: cannot write to %s: %s; dropping records (counted) until writes "
                     "succeed again\n",
                     name().c_str(), std::strerror(err));
      }
    }
    lock.lock();
    busy_ = false;
    queued_bytes_ -= rec.size();
    if (queue_.empty()) idle_.notify_all();
  }
  busy_ = false;
  idle_.notify_all();
}

}  // namespace loopstall
