// Capture files (`loopstall capture --save FILE`): what a capture saw, kept
// for `loopstall report` on any host. gzip-compressed JSON Lines, versioned;
// the format is documented in docs/capture-format.md. A file is outside data
// when it is read back: every read is bounded and every failure is a
// CaptureError with a message a person can act on.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "loopstall/sink.hpp"

namespace loopstall {

inline constexpr int kCaptureFormatVersion = 1;

class CaptureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CaptureMeta {
  int version = kCaptureFormatVersion;
  std::string loopstall_version, host, kernel;
  double threshold_ms = 0;
  std::int64_t start_unix_ns = 0, end_unix_ns = 0;
  std::vector<std::string> command_line;
};

// One watched process's loops over the capture.
struct CaptureLoop {
  std::uint32_t pid = 0;
  std::string comm, loop;
  std::uint64_t iterations = 0;
  IterationHist hist{};  // log2 us buckets (see IterationDelta)
};

struct Capture {
  CaptureMeta meta;
  // Stall events (stall-event.schema.json): every final report, and the
  // last report of each stall still in progress when the capture ended.
  std::vector<nlohmann::json> stalls;
  std::vector<CaptureLoop> loops;
  std::uint64_t lost_events = 0;
  // In double: the difference of two int64 times from a file may not fit one.
  double duration_s() const {
    return (static_cast<double>(meta.end_unix_ns) - static_cast<double>(meta.start_unix_ns)) / 1e9;
  }
};

// A capture file's records after its header, as the capture goes: stall
// events as they come (nothing held in memory but the stalls in progress),
// loops and the end record at finish(). One line per record, to `out`: a
// CaptureFileWriter, or loopstalld's control socket for a client that saves
// (control_protocol.hpp).
class CaptureRecordSink : public Sink {
 public:
  explicit CaptureRecordSink(Writer out);
  void stall(const StallReport& r) override;
  void finish(const Summary& s) override;

 private:
  Writer out_;
  std::map<std::string, nlohmann::json> in_progress_;  // by stall_id: the latest ongoing report
};

// The gzip file itself: the header from `meta` at once, then record lines.
// Throws CaptureError when the file cannot be opened; close() throws when
// a write failed (a full disk).
class CaptureFileWriter {
 public:
  CaptureFileWriter(const std::string& path, const CaptureMeta& meta);
  ~CaptureFileWriter();
  CaptureFileWriter(const CaptureFileWriter&) = delete;
  CaptureFileWriter& operator=(const CaptureFileWriter&) = delete;
  void write(std::string_view record_line);
  Writer writer() {
    return [this](std::string_view l) { write(l); };
  }
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A standalone capture's file: the records, written to a CaptureFileWriter,
// closed at finish(). Throws CaptureError when the file cannot be written.
class CaptureFileSink : public Sink {
 public:
  CaptureFileSink(const std::string& path, const CaptureMeta& meta);
  void stall(const StallReport& r) override { records_.stall(r); }
  void finish(const Summary& s) override;

 private:
  CaptureFileWriter file_;
  CaptureRecordSink records_;
};

// What a capture file says about the capture that made it, on this host now.
CaptureMeta capture_meta(double threshold_ms, std::vector<std::string> command_line);

// Reads a capture file. Throws CaptureError for a file that is missing, not
// a capture, corrupted, truncated or of a newer format version.
Capture read_capture(const std::string& path);

}  // namespace loopstall
