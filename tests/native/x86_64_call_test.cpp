#include "x86_64_call.hpp"

#include <doctest/doctest.h>

#include <vector>

using loopstall::native::ends_with_call;

namespace {

bool ends(std::vector<std::uint8_t> code) {
  return ends_with_call(code.data(), code.size());
}

}  // namespace

TEST_CASE("ends_with_call: every encoded length of call") {
  CHECK(ends({0xe8, 0x10, 0x20, 0x30, 0x40}));              // call rel32
  CHECK(ends({0x90, 0xff, 0xd0}));                          // call rax
  CHECK(ends({0x41, 0xff, 0xd3}));                          // call r11
  CHECK(ends({0xff, 0x10}));                                // call [rax]
  CHECK(ends({0xff, 0x50, 0x08}));                          // call [rax+8]
  CHECK(ends({0xff, 0x14, 0x24}));                          // call [rsp]
  CHECK(ends({0xff, 0x54, 0x24, 0x08}));                    // call [rsp+8]
  CHECK(ends({0xff, 0x15, 0x00, 0x10, 0x00, 0x00}));        // call [rip+0x1000]
  CHECK(ends({0xff, 0x90, 0x00, 0x01, 0x00, 0x00}));        // call [rax+0x100]
  CHECK(ends({0xff, 0x94, 0x24, 0x00, 0x01, 0x00, 0x00}));  // call [rsp+0x100]
  CHECK(ends({0xff, 0x14, 0xc5, 0x00, 0x10, 0x00, 0x00}));  // call [rax*8+0x1000]
}

TEST_CASE("ends_with_call: not calls") {
  CHECK_FALSE(ends({}));
  CHECK_FALSE(ends({0xc3}));
  CHECK_FALSE(ends({0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}));
  CHECK_FALSE(ends({0xff, 0xe0}));              // jmp rax
  CHECK_FALSE(ends({0xff, 0x25, 0, 0, 0, 0}));  // jmp [rip+d32] (a PLT stub)
  CHECK_FALSE(ends({0x48, 0x89, 0xc7}));        // mov rdi, rax
  CHECK_FALSE(ends({0xff, 0x15}));              // call [rip+d32] cut short
  CHECK_FALSE(ends({0xe9, 0, 0, 0, 0}));        // jmp rel32
}
