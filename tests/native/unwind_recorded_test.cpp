// Offline replay of recorded snapshots (tests/native/data/*.rec, made with
// loopstall_native_record) through the unwinder's register and memory
// callbacks: no live process, only the snapshot and the ELF files.
#include <doctest/doctest.h>

#include <filesystem>

#include "doctest_helpers.hpp"
#include "loopstall/native/unwinder.hpp"
#include "recording.hpp"

using namespace loopstall::native;
using namespace loopstall::native::test;

namespace {

std::vector<std::filesystem::path> recordings() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(LOOPSTALL_NATIVE_TEST_DATA)) {
    if (e.path().extension() == ".rec") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

int index_of(const std::vector<UnwoundFrame>& frames, const std::string& prefix) {
  return find_frame(frames, [&](const std::string& s) { return s.starts_with(prefix); });
}

}  // namespace

TEST_CASE("recorded snapshots are small") {
  std::uintmax_t total = 0;
  for (const auto& p : recordings()) total += std::filesystem::file_size(p);
  CHECK(recordings().size() >= 2);
  CHECK(total < 64 * 1024);
}

TEST_CASE("replaying recorded snapshots offline") {
  for (const auto& path : recordings()) {
    CAPTURE(path);
    const auto rec = load_recording(path);
    REQUIRE(rec.has_value());
    if (const auto bad = mismatched_build_ids(*rec); !bad.empty()) {
      MESSAGE("SKIPPED " << path.filename().string() << ": recorded for other builds of " << bad.front()
                         << " (re-record with loopstall_native_record --workload ...)");
      continue;
    }
    NativeUnwinder u;
    const auto frames = u.unwind_recorded(rec->maps, rec->snap);
    show_frames(rec->description.c_str(), frames);
    INFO(rec->description << "\n" << format_frames(frames));
    REQUIRE(frames.size() == rec->expected.size());
    for (std::size_t i = 0; i < frames.size(); ++i) {
      CHECK(frames[i].frame.symbol == rec->expected[i].symbol);
      CHECK(frames[i].frame.module == rec->expected[i].module);
      CHECK(frames[i].frame.offset == rec->expected[i].offset);
    }
    // The unwind read nothing beyond the recorded stack bytes.
    CHECK(u.stats().last_stack_bytes_used <= rec->snap.stack.size());
    if (rec->description.find("usleep") != std::string::npos) {
      // Only ip and sp were captured: rbp is recovered from the stack.
      CHECK(rec->snap.regs.known == (UserRegs::kIp | UserRegs::kSp));
      CHECK(index_of(frames, "usleep") > 0);
      CHECK(index_of(frames, "ffi_call") > index_of(frames, "usleep"));
      CHECK(index_of(frames, "_PyEval_EvalFrameDefault") > index_of(frames, "ffi_call"));
      CHECK(frames.back().frame.symbol == "_start");
    }
    if (rec->description.find("SQLite") != std::string::npos) {
      CHECK(frames[0].frame.module.find("libsqlite3.so.0") != std::string::npos);
      CHECK(index_of(frames, "sqlite3_step") >= 0);
      CHECK(index_of(frames, "_PyEval_EvalFrameDefault") > index_of(frames, "sqlite3_step"));
    }
  }
}

TEST_CASE("a recording whose stack was cut short gives a partial stack") {
  const auto paths = recordings();
  REQUIRE_FALSE(paths.empty());
  auto rec = load_recording(paths.front());
  REQUIRE(rec.has_value());
  if (!mismatched_build_ids(*rec).empty()) return;
  NativeUnwinder u;
  const auto full = u.unwind_recorded(rec->maps, rec->snap);
  rec->snap.stack.resize(rec->snap.stack.size() / 4);
  const auto partial = u.unwind_recorded(rec->maps, rec->snap);
  CHECK(partial.size() < full.size());
  for (std::size_t i = 0; i < partial.size() && i < 2; ++i) CHECK(partial[i].frame.symbol == full[i].frame.symbol);
}
