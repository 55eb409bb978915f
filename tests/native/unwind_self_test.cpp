// Unwinding this very process (no root needed): a getcontext snapshot, and
// one doctored to stop inside a PLT stub, whose CFA rule is an expression
// over rip.
#include <doctest/doctest.h>

#include <cstring>

#include "doctest_helpers.hpp"
#include "loopstall/native/unwinder.hpp"
#include "self_snapshot.hpp"

using namespace loopstall::native;
using namespace loopstall::native::test;

namespace {

StackSnapshot snapshot_of_myself() {
  auto s = capture_myself(64 * 1024);
  REQUIRE(s);
  return std::move(*s);
}

}  // namespace

TEST_CASE("unwinding this very process from getcontext") {
  NativeUnwinder u;
  const auto frames = u.unwind_frames(::getpid(), snapshot_of_myself());
  show_frames("self", frames);
  INFO(format_frames(frames));
  REQUIRE(frames.size() >= 3);
  CHECK(frames[0].frame.symbol.find("capture_myself") != std::string::npos);
  CHECK(find_frame(frames, [](const std::string& s) { return s == "main"; }) > 0);
  CHECK(frames.back().frame.symbol == "_start");
}

TEST_CASE("unwinding from the first instruction of a PLT stub") {
  // capture_myself's ip returns from `call getcontext@plt`: the call's
  // target is the stub. Pretend the thread was caught on its first
  // instruction: the return address is pushed, nothing else changed.
  StackSnapshot s = snapshot_of_myself();
  std::int32_t rel = 0;
  std::memcpy(&rel, reinterpret_cast<const void*>(s.regs.ip - 4), 4);
  REQUIRE(*reinterpret_cast<const std::uint8_t*>(s.regs.ip - 5) == 0xe8);
  const std::uint64_t stub = s.regs.ip + static_cast<std::int64_t>(rel);
  std::vector<std::uint8_t> stack(8);
  std::memcpy(stack.data(), &s.regs.ip, 8);
  s.stack.insert(s.stack.begin(), stack.begin(), stack.end());
  s.regs.sp -= 8;
  s.stack_base = s.regs.sp;
  s.regs.ip = stub;
  NativeUnwinder u;
  const auto frames = u.unwind_frames(::getpid(), s);
  INFO(format_frames(frames));
  show_frames("plt", frames);
  REQUIRE(frames.size() >= 3);
  CHECK(frames[1].frame.symbol.find("capture_myself") != std::string::npos);
  CHECK(frames.back().frame.symbol == "_start");
}
