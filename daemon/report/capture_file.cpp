#include "loopstall/capture_file.hpp"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>

#include "loopstall/clock.hpp"
#include "loopstall/json_sink.hpp"

namespace loopstall {
namespace {

constexpr const char* kMagic = "loopstall-capture";
// Bounds on reading outside data.
constexpr std::size_t kMaxLine = 16u << 20;
constexpr std::size_t kMaxTotal = 1u << 30;
constexpr std::size_t kMaxRecords = 10'000'000;

using nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

CaptureRecordSink::CaptureRecordSink(Writer out) : out_(std::move(out)) {}

void CaptureRecordSink::stall(const StallReport& r) {
  if (r.ongoing) {
    in_progress_[r.stall_id] = to_json(r);
    return;
  }
  in_progress_.erase(r.stall_id);
  out_(dump({{"record", "stall"}, {"event", to_json(r)}}));
}

void CaptureRecordSink::finish(const Summary& s) {
  for (auto& [id, ev] : in_progress_) out_(dump({{"record", "stall"}, {"event", ev}}));
  in_progress_.clear();
  for (const auto& [pid, t] : s.processes)
    out_(dump({{"record", "loop"},
               {"pid", pid},
               {"comm", t.comm},
               {"loop", std::string(to_string(t.loop))},
               {"iterations", t.iterations},
               {"hist_log2_us", t.hist}}));
  const std::int64_t end = WallClock{}.to_unix_ns(monotonic_ns());
  out_(dump({{"record", "end"}, {"end_unix_ns", end}, {"lost_events", s.lost_events}}));
}

struct CaptureFileWriter::Impl {
  gzFile gz = nullptr;
  std::string path;
  bool failed = false;
};

CaptureFileWriter::CaptureFileWriter(const std::string& path, const CaptureMeta& m) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  // A regular file only: a FIFO would block the capture in open().
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw CaptureError("capture file " + path + " is not a regular file");
  impl_->gz = gzopen(path.c_str(), "wb6");
  if (!impl_->gz) throw CaptureError("cannot write capture file " + path + ": " + std::strerror(errno));
  write(dump({{"record", "header"},
              {"format", kMagic},
              {"version", m.version},
              {"loopstall_version", m.loopstall_version},
              {"host", m.host},
              {"kernel", m.kernel},
              {"threshold_ms", m.threshold_ms},
              {"start_unix_ns", m.start_unix_ns},
              {"command_line", m.command_line}}));
}

CaptureFileWriter::~CaptureFileWriter() {
  if (impl_->gz) gzclose(impl_->gz);
}

void CaptureFileWriter::write(std::string_view line) {
  if (impl_->failed || !impl_->gz) return;
  if (gzwrite(impl_->gz, line.data(), static_cast<unsigned>(line.size())) != static_cast<int>(line.size()))
    impl_->failed = true;
}

void CaptureFileWriter::close() {
  if (!impl_->gz) return;
  const int rc = gzclose(impl_->gz);
  impl_->gz = nullptr;
  if (impl_->failed || rc != Z_OK) throw CaptureError("writing capture file " + impl_->path + " failed");
}

CaptureFileSink::CaptureFileSink(const std::string& path, const CaptureMeta& meta)
    : file_(path, meta), records_(file_.writer()) {}

void CaptureFileSink::finish(const Summary& s) {
  records_.finish(s);
  file_.close();
}

CaptureMeta capture_meta(double threshold_ms, std::vector<std::string> command_line) {
  CaptureMeta m;
  m.loopstall_version = LOOPSTALL_VERSION;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  m.host = host;
  utsname u{};
  if (uname(&u) == 0) m.kernel = u.release;
  m.threshold_ms = threshold_ms;
  m.start_unix_ns = WallClock{}.to_unix_ns(monotonic_ns());
  m.command_line = std::move(command_line);
  return m;
}

namespace {

// The records of a gzip JSON Lines file, line by line, bounded.
class RecordReader {
 public:
  explicit RecordReader(const std::string& path) : path_(path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
      throw CaptureError("cannot open capture file " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw CaptureError("capture file " + path + " is not a regular file");
    gz_ = gzopen(path.c_str(), "rb");
    if (!gz_) throw CaptureError("cannot open capture file " + path + ": " + std::strerror(errno ? errno : ENOENT));
    gzbuffer(gz_, 128 * 1024);
  }
  ~RecordReader() {
    if (gz_) gzclose(gz_);
  }
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // The next record, or nullopt at a clean end of the data.
  std::optional<json> next() {
    std::string line;
    if (!read_line(line)) return std::nullopt;
    if (++records_ > kMaxRecords) fail("more than " + std::to_string(kMaxRecords) + " records");
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("record " + std::to_string(records_) + " is not a JSON object");
    return j;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw CaptureError("capture file " + path_ + " is corrupted: " + why);
  }

 private:
  bool read_line(std::string& line) {
    while (true) {
      const auto nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        line.assign(buf_, pos_, nl - pos_);
        pos_ = nl + 1;
        return true;
      }
      if (buf_.size() - pos_ > kMaxLine) fail("a record longer than " + std::to_string(kMaxLine) + " bytes");
      buf_.erase(0, pos_);
      pos_ = 0;
      char chunk[65536];
      const int n = gzread(gz_, chunk, sizeof chunk);
      if (n < 0) {
        int err = 0;
        const char* msg = gzerror(gz_, &err);
        fail(msg && *msg ? msg : "unreadable gzip data");
      }
      if (n == 0) {
        int err = 0;
        const char* msg = gzerror(gz_, &err);
        if (err != Z_OK && err != Z_STREAM_END) fail(msg && *msg ? msg : "unreadable gzip data");
        if (!buf_.empty()) throw CaptureError("capture file " + path_ + " is truncated (a record is cut short)");
        return false;
      }
      total_ += static_cast<std::size_t>(n);
      if (total_ > kMaxTotal) fail("more than " + std::to_string(kMaxTotal) + " bytes of data");
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  std::string path_;
  gzFile gz_ = nullptr;
  std::string buf_;
  std::size_t pos_ = 0, total_ = 0, records_ = 0;
};

// A JSON number as T when it is one and fits: json::get<T>() would cast a
// float or an out-of-range integer (undefined behaviour for 1e300).
template <typename T>
std::optional<T> checked_number(const json& v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) return v.get<T>();
  } else if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (std::in_range<T>(u)) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (std::in_range<T>(i)) return static_cast<T>(i);
  }
  return std::nullopt;
}

[[noreturn]] void wrong_type(const char* key, const RecordReader& r) {
  r.fail(std::string("\"") + key + "\" has the wrong type");
}

// A record's member, by reference: a copy of JSON nests as deep as the file
// makes it, and copying recurses.
const json& member(const json& j, const char* key, const RecordReader& r) {
  const auto it = j.find(key);
  if (it == j.end()) r.fail(std::string("a record lacks \"") + key + "\"");
  return *it;
}

template <typename T>
T field(const json& j, const char* key, const RecordReader& r) {
  const json& v = member(j, key, r);
  if constexpr (std::is_arithmetic_v<T>) {
    if (const auto n = checked_number<T>(v)) return *n;
  } else {
    static_assert(std::is_same_v<T, std::string>);
    if (v.is_string()) return v.get<std::string>();
  }
  wrong_type(key, r);
}

// An optional field: `fallback` when absent, a CaptureError when of another type.
template <typename T>
T optional_field(const json& j, const char* key, T fallback, const RecordReader& r) {
  return j.contains(key) ? field<T>(j, key, r) : fallback;
}

std::vector<std::string> strings_field(const json& j, const char* key, const RecordReader& r) {
  std::vector<std::string> out;
  const auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_array()) wrong_type(key, r);
  for (const json& s : *it) {
    if (!s.is_string()) wrong_type(key, r);
    out.push_back(s.get<std::string>());
  }
  return out;
}

// What the report needs of a stall event to place it: a pid and a duration;
// `ongoing`, when there, a boolean. Its other fields are read leniently.
void check_stall_event(const json& ev, const RecordReader& r) {
  if (!ev.is_object() || !ev.contains("duration_ms") || !ev.contains("pid"))
    r.fail("a stall record without a stall event");
  if (!checked_number<double>(ev["duration_ms"]) || !checked_number<std::uint32_t>(ev["pid"]))
    r.fail("a stall event whose pid or duration_ms is not a number of its range");
  if (ev.contains("ongoing") && !ev["ongoing"].is_boolean()) r.fail("a stall event whose \"ongoing\" is not a boolean");
}

}  // namespace

Capture read_capture(const std::string& path) {
  RecordReader in(path);
  Capture c;
  std::optional<json> header;
  try {
    header = in.next();
  } catch (const CaptureError&) {  // not even one line of JSON
  }
  if (!header || !header->contains("format") || (*header)["format"] != kMagic)
    throw CaptureError(path + " is not a loopstall capture file");
  c.meta.version = field<int>(*header, "version", in);
  if (c.meta.version > kCaptureFormatVersion)
    throw CaptureError(path + " is a capture of format version " + std::to_string(c.meta.version) +
                       "; this loopstall reads up to version " + std::to_string(kCaptureFormatVersion) +
                       ": use a newer loopstall");
  if (c.meta.version < 1) in.fail("format version " + std::to_string(c.meta.version));
  c.meta.loopstall_version = optional_field<std::string>(*header, "loopstall_version", "", in);
  c.meta.host = optional_field<std::string>(*header, "host", "", in);
  c.meta.kernel = optional_field<std::string>(*header, "kernel", "", in);
  c.meta.threshold_ms = field<double>(*header, "threshold_ms", in);
  c.meta.start_unix_ns = field<std::int64_t>(*header, "start_unix_ns", in);
  c.meta.command_line = strings_field(*header, "command_line", in);
  bool ended = false;
  while (auto rec = in.next()) {
    if (ended) in.fail("records after the end record");
    const std::string kind = field<std::string>(*rec, "record", in);
    if (kind == "stall") {
      (void)member(*rec, "event", in);
      json ev = std::move(rec->at("event"));  // moved, not copied (see member())
      check_stall_event(ev, in);
      c.stalls.push_back(std::move(ev));
    } else if (kind == "loop") {
      CaptureLoop l;
      l.pid = field<std::uint32_t>(*rec, "pid", in);
      l.comm = field<std::string>(*rec, "comm", in);
      l.loop = field<std::string>(*rec, "loop", in);
      l.iterations = field<std::uint64_t>(*rec, "iterations", in);
      const json& hist = member(*rec, "hist_log2_us", in);
      if (!hist.is_array() || hist.size() != l.hist.size())
        in.fail("a histogram of " + std::to_string(hist.size()) + " buckets");
      for (std::size_t i = 0; i < l.hist.size(); ++i) {
        const auto n = checked_number<std::uint64_t>(hist[i]);
        if (!n) wrong_type("hist_log2_us", in);
        l.hist[i] = *n;
      }
      c.loops.push_back(std::move(l));
    } else if (kind == "end") {
      c.meta.end_unix_ns = field<std::int64_t>(*rec, "end_unix_ns", in);
      c.lost_events = field<std::uint64_t>(*rec, "lost_events", in);
      ended = true;
    }  // unknown records of the same version: skipped (room to grow)
  }
  if (!ended) throw CaptureError("capture file " + path + " is truncated (no end record): was the capture killed?");
  if (c.meta.end_unix_ns < c.meta.start_unix_ns) in.fail("it ends before it starts");
  return c;
}

}  // namespace loopstall
