#include "dwfl_process.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "loopstall/native/elf_file.hpp"
#include "loopstall/procfs.hpp"

namespace loopstall::native {

namespace {

using dwarf_reg::kRbp;
using dwarf_reg::kRbx;
using dwarf_reg::kRip;
using dwarf_reg::kRsp;
constexpr int kCalleeSaved[] = {kRbx, kRbp, kRsp, 12, 13, 14, 15};

// A register guessed after another fails: bounded, each must make progress.
constexpr int kMaxPasses = 8;
constexpr std::uint64_t kMaxVdsoSize = 1 << 20;

// Where a live process's mapped file can be opened (containers too).
std::vector<std::string> mapped_file_paths(pid_t pid, const Mapping& m) {
  return target_file_paths(static_cast<std::uint32_t>(pid), m.path, m.start, m.end);
}

// --- libdwfl callbacks -------------------------------------------------------

// No exception may cross libdw's C frames: these callbacks fail instead.

int find_elf_cb(Dwfl_Module*, void** userdata, const char*, Dwarf_Addr, char** file_name, Elf** elfp) {
  auto* rec = static_cast<DwflProcess::ModuleRecord*>(*userdata);
  try {
    return rec == nullptr ? -1 : rec->owner->find_elf(*rec, file_name, elfp);
  } catch (...) {
    return -1;
  }
}

// Separate debug info only from the local build-id tree (Debian's -dbgsym
// packages); never from the network, whatever DEBUGINFOD_URLS says.
int find_debuginfo_cb(Dwfl_Module* mod, void** userdata, const char*, Dwarf_Addr, const char*, const char*, GElf_Word,
                      char** debuginfo_file_name) {
  const auto* rec = static_cast<DwflProcess::ModuleRecord*>(*userdata);
  if (rec == nullptr || !rec->owner->uses_debuginfo()) return -1;
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  const int len = dwfl_module_build_id(mod, &bits, &vaddr);
  if (len < 2) return -1;
  try {
    std::string id;
    char hex[3];
    for (int i = 0; i < len; ++i) {
      std::snprintf(hex, sizeof hex, "%02x", bits[i]);
      id += hex;
    }
    const std::string path = debug_file_path(id);
    const int fd = open_regular_file(path, 0);
    if (fd >= 0) *debuginfo_file_name = strdup(path.c_str());
    return fd;
  } catch (...) {
    return -1;
  }
}

pid_t next_thread_cb(Dwfl*, void* arg, void** thread_argp) {
  if (*thread_argp != nullptr) return 0;
  *thread_argp = arg;
  return static_cast<DwflProcess*>(arg)->pid();
}

bool get_thread_cb(Dwfl*, pid_t, void* arg, void** thread_argp) {
  *thread_argp = arg;
  return true;
}

bool memory_read_cb(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  std::uint64_t v = 0;
  try {
    if (!static_cast<DwflProcess*>(arg)->read_word(addr, &v)) return false;
  } catch (...) {
    return false;
  }
  *result = v;
  return true;
}

bool set_initial_registers_cb(Dwfl_Thread* thread, void* thread_arg) {
  return static_cast<DwflProcess*>(thread_arg)->set_initial_registers(thread);  // does not allocate
}

const Dwfl_Callbacks kDwflCallbacks = {
    .find_elf = find_elf_cb,
    .find_debuginfo = find_debuginfo_cb,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    .next_thread = next_thread_cb,
    .get_thread = get_thread_cb,
    .memory_read = memory_read_cb,
    .set_initial_registers = set_initial_registers_cb,
    .detach = nullptr,
    .thread_detach = nullptr,
};

// One dwfl_getthread_frames run.
struct Pass {
  std::vector<RawFrame>* out = nullptr;
  std::size_t max_frames = 0;
  bool skip_first = false;  // the frame we restart from is already in out
  bool recovered = false;
  std::size_t seen = 0;
  RawFrame last;
  DwarfRegs last_regs;
};

int frame_cb(Dwfl_Frame* state, void* arg) {
  auto& p = *static_cast<Pass*>(arg);
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(state, &pc, &activation) || pc == 0) return DWARF_CB_ABORT;
  p.last = {pc, activation, p.recovered};
  p.last_regs = {};
  for (const int r : kCalleeSaved) {
    Dwarf_Word v = 0;
    if (dwfl_frame_reg(state, static_cast<unsigned>(r), &v) == 0) p.last_regs.set(r, v);
  }
  if (!(p.skip_first && p.seen == 0)) {
    try {
      p.out->push_back(p.last);
    } catch (...) {
      return DWARF_CB_ABORT;
    }
  }
  ++p.seen;
  return p.out->size() >= p.max_frames ? DWARF_CB_ABORT : DWARF_CB_OK;
}

}  // namespace

DwflProcess::DwflProcess(pid_t pid, std::vector<Mapping> maps, Mode mode)
    : pid_(pid), maps_(std::move(maps)), mode_(mode) {}

DwflProcess::~DwflProcess() {
  if (dwfl_ != nullptr) dwfl_end(dwfl_);
}

std::unique_ptr<DwflProcess> DwflProcess::create(pid_t pid, std::vector<Mapping> maps, Mode mode) {
  std::unique_ptr<DwflProcess> p(new DwflProcess(pid, std::move(maps), mode));
  p->dwfl_ = dwfl_begin(&kDwflCallbacks);
  if (p->dwfl_ == nullptr) return nullptr;
  dwfl_report_begin(p->dwfl_);
  for (const ModuleSpan& span : code_modules(p->maps_)) {
    Dwfl_Module* mod = dwfl_report_module(p->dwfl_, span.path.c_str(), span.start, span.end);
    if (mod == nullptr) continue;
    auto rec = std::make_unique<ModuleRecord>();
    rec->owner = p.get();
    rec->span = span;
    rec->first = p->maps_[span.first_mapping];
    void** userdata = nullptr;
    dwfl_module_info(mod, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    if (userdata == nullptr) continue;
    *userdata = rec.get();
    p->modules_.push_back(std::move(rec));
  }
  if (dwfl_report_end(p->dwfl_, nullptr, nullptr) != 0 || p->modules_.empty()) return nullptr;
  // Opens the first module that has an ELF file to learn the architecture.
  if (!dwfl_attach_state(p->dwfl_, nullptr, pid, &kThreadCallbacks, p.get())) return nullptr;
  return p;
}

int DwflProcess::open_module_file(const ModuleRecord& rec) {
  if (mode_.live) {
    // Exactly the mapped file (map_files: survives deletion and replacement),
    // else the same inode at its path in the process's root (mount namespaces).
    for (const std::string& path : mapped_file_paths(pid_, rec.first)) {
      const int fd = open_regular_file(path, path.find("/map_files/") == std::string::npos ? rec.first.inode : 0);
      if (fd >= 0) return fd;
    }
  }
  // A process that exited: the host path, if it still is the same file.
  return open_regular_file(rec.first.file_path(), mode_.recorded ? 0 : rec.first.inode);
}

int DwflProcess::find_elf(ModuleRecord& rec, char** file_name, Elf** elfp) {
  if (rec.span.vdso) {
    // The kernel's vDSO exists only in memory; the mapping is the whole image.
    const std::uint64_t size = rec.span.end - rec.span.start;
    if (!mode_.live || size > kMaxVdsoSize) return -1;
    rec.image.resize(size);
    if (!ProcessMemory(pid_).read(rec.span.start, rec.image.data(), size)) return -1;
    *elfp = elf_memory(rec.image.data(), size);
    *file_name = nullptr;
    return -1;
  }
  // The Elf is mapped whole: its descriptor can be closed at once, so cached
  // processes do not hold descriptors (libdwfl would keep one per module).
  Elf* elf = ElfFile::adopt(open_module_file(rec)).release();
  if (elf == nullptr) return -1;
  *elfp = elf;
  *file_name = strdup(rec.first.file_path().c_str());
  return -1;
}

bool DwflProcess::set_initial_registers(Dwfl_Thread* thread) {
  // Register 16 too, as libdwfl's own ptrace backend does: PLT stubs' CFA
  // expressions read rip.
  for (int r = 0; r <= kRip; ++r) {
    if (!initial_.has(r)) continue;
    const Dwarf_Word v = initial_.value[r];
    if (!dwfl_thread_state_registers(thread, r, 1, &v)) return false;
  }
  dwfl_thread_state_register_pc(thread, initial_.value[kRip]);
  return true;
}

bool DwflProcess::read_word(std::uint64_t addr, std::uint64_t* out) {
  return read_bytes(addr, out, 8, true);
}

bool DwflProcess::read_bytes(std::uint64_t addr, void* out, std::size_t n, bool from_stack) {
  if (from_stack && snap_ != nullptr) {
    const std::uint64_t base = snap_->stack_base;
    const std::size_t size = snap_->stack.size();
    if (addr >= base && addr - base < size && n <= size - (addr - base)) {
      const std::size_t at = static_cast<std::size_t>(addr - base);
      std::memcpy(out, snap_->stack.data() + at, n);
      stack_used_ = std::max(stack_used_, at + n);
      return true;
    }
  }
  if (read_from_elf(addr, out, n)) return true;
  return mode_.live && mode_.read_live_memory && ProcessMemory(pid_).read(addr, out, n);
}

// Read-only segments are the same in the file and in memory (writable ones
// are relocated or modified at run time).
bool DwflProcess::read_from_elf(std::uint64_t addr, void* out, std::size_t n) {
  Dwfl_Module* mod = dwfl_addrmodule(dwfl_, addr);
  if (mod == nullptr) return false;
  Dwarf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(mod, &bias);
  if (elf == nullptr) return false;
  std::size_t raw_size = 0;
  const char* raw = elf_rawfile(elf, &raw_size);
  std::size_t nph = 0;
  if (raw == nullptr || elf_getphdrnum(elf, &nph) != 0) return false;
  const std::uint64_t vaddr = addr - bias;
  for (std::size_t i = 0; i < nph; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD || (ph.p_flags & PF_W)) {
      continue;
    }
    if (vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_filesz || n > ph.p_filesz - (vaddr - ph.p_vaddr)) continue;
    const std::uint64_t off = ph.p_offset + (vaddr - ph.p_vaddr);
    if (off > raw_size || n > raw_size - off) return false;
    std::memcpy(out, raw + off, n);
    return true;
  }
  return false;
}

std::vector<RawFrame> DwflProcess::unwind(const StackSnapshot& snap, std::size_t max_frames) {
  std::vector<RawFrame> out;
  const UserRegs& u = snap.regs;
  if (!(u.known & UserRegs::kIp) || u.ip == 0 || max_frames == 0) return out;
  DwarfRegs regs;
  regs.set(kRip, u.ip);
  const std::pair<std::uint32_t, std::pair<int, std::uint64_t>> named[] = {
      {UserRegs::kSp, {kRsp, u.sp}}, {UserRegs::kBp, {kRbp, u.bp}}, {UserRegs::kBx, {kRbx, u.bx}},
      {UserRegs::kR12, {12, u.r12}}, {UserRegs::kR13, {13, u.r13}}, {UserRegs::kR14, {14, u.r14}},
      {UserRegs::kR15, {15, u.r15}}};
  for (const auto& [bit, rv] : named) {
    if (u.known & bit) regs.set(rv.first, rv.second);
  }

  snap_ = &snap;
  stack_used_ = 0;
  Pass pass;
  pass.out = &out;
  pass.max_frames = max_frames;
  for (int n = 0; n < kMaxPasses; ++n) {
    initial_ = regs;
    pass.seen = 0;
    const int rc = dwfl_getthread_frames(dwfl_, pid_, frame_cb, &pass);
    // Abort: enough frames or a bad pc. libdwfl ends with 0 or -1 alike when
    // a frame cannot be unwound, so the rule of the last frame decides.
    if (rc == DWARF_CB_ABORT || pass.seen == 0 || (pass.skip_first && pass.seen < 2)) break;
    // Stuck: retry from the last frame once the register its CFA needs is
    // recovered. Its pc is a return address: restart just inside the call.
    DwarfRegs next = pass.last_regs;
    if (!recover_cfa_register(pass.last, next)) break;
    next.set(kRip, pass.last.activation ? pass.last.pc : pass.last.pc - 1);
    regs = next;
    pass.skip_first = true;
    pass.recovered = true;
  }
  snap_ = nullptr;
  return out;
}

}  // namespace loopstall::native
