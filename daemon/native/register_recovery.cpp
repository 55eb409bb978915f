// Guessing a register the snapshot lacks. A thread seen only through /proc
// has just ip and sp, and some frames' CFA is based on another register:
// libffi's ffi_call_unix64 (CFA = rbp + 32), any function that keeps a frame
// pointer. The return address sits at CFA - 8, so the first word above sp
// that looks like one (it follows a call instruction in mapped code) fixes
// the CFA, hence the register; unwinding then resumes from that frame.
#include <dwarf.h>
#include <elfutils/libdw.h>

#include <algorithm>
#include <cstdlib>

#include "dwfl_process.hpp"
#include "x86_64_call.hpp"

namespace loopstall::native {
namespace {

using dwarf_reg::kRip;
using dwarf_reg::kRsp;

// The CFA rule at pc as "register + offset"; false for expressions.
bool cfa_rule(Dwfl_Module* mod, std::uint64_t pc, int& reg, std::int64_t& offset) {
  for (int which = 0; which < 2; ++which) {
    Dwarf_Addr bias = 0;
    Dwarf_CFI* cfi = which == 0 ? dwfl_module_eh_cfi(mod, &bias) : dwfl_module_dwarf_cfi(mod, &bias);
    if (cfi == nullptr) continue;
    Dwarf_Frame* frame = nullptr;
    if (dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0) continue;
    Dwarf_Op* ops = nullptr;
    std::size_t nops = 0;
    bool ok = false;
    if (dwarf_frame_cfa(frame, &ops, &nops) == 0 && nops == 1) {
      if (ops[0].atom == DW_OP_bregx) {
        reg = static_cast<int>(ops[0].number);
        offset = static_cast<std::int64_t>(ops[0].number2);
        ok = true;
      } else if (ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
        reg = ops[0].atom - DW_OP_breg0;
        offset = static_cast<std::int64_t>(ops[0].number);
        ok = true;
      }
    }
    std::free(frame);
    return ok;
  }
  return false;
}

}  // namespace

// Whether addr follows a call instruction in mapped code: what a return
// address saved on the stack must look like.
bool DwflProcess::looks_like_return_address(std::uint64_t addr) {
  const Mapping* m = find_mapping(maps_, addr);
  if (m == nullptr || !m->executable || addr - m->start < 2) return false;
  std::uint8_t code[kLongestCall] = {};
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kLongestCall, addr - m->start));
  return read_bytes(addr - n, code, n, false) && ends_with_call(code, n);
}

bool DwflProcess::recover_cfa_register(const RawFrame& stuck, DwarfRegs& regs) {
  const std::uint64_t pc = stuck.activation ? stuck.pc : stuck.pc - 1;
  Dwfl_Module* mod = dwfl_addrmodule(dwfl_, pc);
  int reg = -1;
  std::int64_t offset = 0;
  if (mod == nullptr || !cfa_rule(mod, pc, reg, offset)) return false;
  // Only a base register that was never captured can be guessed (a snapshot
  // from /proc has just ip and sp; ffi_call_unix64's CFA is rbp-based).
  if (reg < 0 || reg >= kRip || reg == kRsp || regs.has(reg) || !regs.has(kRsp) || snap_ == nullptr) return false;
  const std::uint64_t sp = regs.value[kRsp];
  const std::uint64_t top = snap_->stack_base + snap_->stack.size();
  // The return address sits at CFA - 8: the first word above sp that looks
  // like one fixes CFA, hence the register.
  for (std::uint64_t slot = (sp + 7) & ~7ull; slot + 8 <= top; slot += 8) {
    std::uint64_t word = 0;
    if (!read_bytes(slot, &word, 8, true)) return false;
    if (!looks_like_return_address(word)) continue;
    regs.set(reg, slot + 8 - static_cast<std::uint64_t>(offset));
    return true;
  }
  return false;
}

}  // namespace loopstall::native
