// The one reader of /proc: process and thread listing, the per-process text
// files (bounded: their content is chosen by whoever runs the process),
// thread activity, PID namespaces and where another process's files can be
// opened. A root directory is a parameter so tests use fake trees. Parsers
// of the texts are exposed for tests and fuzz targets. /proc/PID/maps is
// parsed in native/proc_maps.hpp and read by read_maps() below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loopstall {

// /proc/PID/maps kept at most: a real process's are tens of KiB, but a
// process may map 65530 areas with 4 KiB names each.
inline constexpr std::size_t kMaxMapsBytes = 8u << 20;

// --- Files --------------------------------------------------------------------

// The first `max` bytes of a file (a /proc file is read to its end or `max`);
// nullopt when it cannot be opened.
std::optional<std::string> read_file_prefix(const std::string& path, std::size_t max);

// A symlink's target ("" when unreadable).
std::string read_link(const std::string& path);

// /proc/PID/maps, cut at kMaxMapsBytes (after the last whole line); nullopt
// when the process is gone or not ours to read.
std::optional<std::string> read_maps(std::uint32_t pid, const std::string& proc_root = "/proc");

// The arguments joined by spaces, the first kMaxCmdlineBytes (limits.hpp).
std::optional<std::string> read_cmdline(std::uint32_t pid, const std::string& proc_root = "/proc");
// Its parser: /proc/PID/cmdline's NUL-terminated arguments joined by spaces.
std::string join_cmdline(std::string raw);

// The parent's pid from /proc/PID/stat; nullopt for init's children (ppid <= 1) and the gone.
std::optional<std::uint32_t> parent_pid(std::uint32_t pid, const std::string& proc_root = "/proc");

// Path without the kernel's " (deleted)" suffix (a file removed or replaced
// on disk since it was mapped or executed).
std::string_view strip_deleted(std::string_view path);
bool is_deleted(std::string_view path);

// (3, 11) from ".../python3.11", ".../libpython3.11.so.1.0", ".../python3.11d":
// [lib]python3.<digits>[a-z]*[.so[.digits]*] as the last path component.
std::optional<std::pair<int, int>> python_version_numbers(std::string_view path);
// The same as "3.11".
std::optional<std::string> python_version_from_path(std::string_view path);

// --- Processes and threads ---------------------------------------------------

// Every process (/proc/[0-9]+).
std::vector<std::uint32_t> process_ids(const std::string& proc_root = "/proc");

// Whether /proc/PID exists (the process has not been reaped).
bool process_exists(std::uint32_t pid, const std::string& proc_root = "/proc");

// Thread ids of a process (/proc/PID/task); empty when it is gone.
std::vector<std::uint32_t> task_ids(std::uint32_t pid, const std::string& proc_root = "/proc");

// Name of one thread (/proc/PID/task/TID/comm); "" when gone.
std::string thread_comm(std::uint32_t pid, std::uint32_t tid, const std::string& proc_root = "/proc");

// Where a thread is now, from /proc/PID/task/TID/{stat,syscall,sched}.
struct ThreadActivity {
  char state = '?';  // stat's state letter: R (running or runnable), S, D, ...
  int syscall = -1;  // the syscall it is in while it sleeps; -1: none or running
  // CLOCK_MONOTONIC ns when it last ran (the scheduler's exec_start, which
  // needs CONFIG_SCHED_DEBUG); nullopt if unknown.
  std::optional<std::uint64_t> last_ran_ns;
};
// nullopt when the thread is gone or not readable.
std::optional<ThreadActivity> thread_activity(std::uint32_t pid, std::uint32_t tid,
                                              const std::string& proc_root = "/proc");
// Parsers of the three files. exec_start_ms is in the scheduler's clock.
// Field n (1-based, as proc(5) counts) of a stat line; comm (field 2) may
// hold spaces and ')', so fields 3.. are counted after its last ')'.
std::optional<std::string_view> stat_field(std::string_view stat, int n);
char parse_stat_state(std::string_view stat);                         // field 3; '?' if malformed
std::optional<std::uint32_t> parse_stat_ppid(std::string_view stat);  // field 4
int parse_stat_cpu(std::string_view stat);            // field 39: the CPU it last ran on; -1 if unreadable
int parse_syscall_nr(std::string_view syscall_file);  // the syscall it sleeps in; -1: none or running
std::optional<double> parse_exec_start_ms(std::string_view sched_file);

// /proc/PID/stat (bounded); nullopt when gone.
std::optional<std::string> read_stat(std::uint32_t pid, const std::string& proc_root = "/proc");

// KiB of executable file mappings (status: VmExe + VmLib, the kernel's
// exec_vm): the executable and the shared libraries' code. Changes with
// exec, dlopen and dlclose, not with the anonymous memory a process maps
// and unmaps all the time. nullopt when gone or malformed.
std::optional<std::uint64_t> parse_exec_mapped_kb(std::string_view status);
std::optional<std::uint64_t> read_exec_mapped_kb(std::uint32_t pid, const std::string& proc_root = "/proc");

// /proc/PID/task/TID/syscall of a thread that is off CPU: the syscall number
// (-1 when blocked outside a syscall), its arguments, and the user sp and pc.
struct ThreadSyscall {
  long nr = -1;
  std::uint64_t args[6] = {};
  std::uint64_t sp = 0;
  std::uint64_t pc = 0;
};
// nullopt for "running", a kernel thread (no user sp/pc) and anything malformed.
std::optional<ThreadSyscall> parse_syscall_file(std::string_view text);
// nullopt while the thread runs, or when it is gone or not readable.
std::optional<ThreadSyscall> read_thread_syscall(std::uint32_t pid, std::uint32_t tid,
                                                 const std::string& proc_root = "/proc");

// --- PID namespaces (containers) --------------------------------------------
// A thread has one id per PID namespace it is in. BPF and /proc give us the
// one in the namespace /proc is mounted for (ours); gettid() inside the
// process, and so CPython's native_thread_id and glibc's struct pthread, hold
// the one in the process's own, innermost namespace.

// The ids of the "NSpid:" line of a /proc status file, outermost (ours) first,
// innermost last. Empty when the line is missing or malformed.
std::vector<std::uint32_t> parse_nspid(std::string_view status_text);

// Thread tid of process pid as the process itself knows it; tid itself on a
// kernel without NSpid (before 4.1); nullopt when the thread is gone.
std::optional<std::uint32_t> innermost_tid(std::uint32_t pid, std::uint32_t tid,
                                           const std::string& proc_root = "/proc");

// Whether process pid lives in a PID namespace below ours (a container), where
// its ids differ from ours.
bool in_child_pid_namespace(std::uint32_t pid, const std::string& proc_root = "/proc");

// Every thread of process pid (/proc/PID/task): our tid -> its innermost tid.
// Threads that exit during the walk are left out.
std::map<std::uint32_t, std::uint32_t> innermost_tids(std::uint32_t pid, const std::string& proc_root = "/proc");

// --- Files of other processes (containers) ----------------------------------
// Where we can open a file that process pid maps or runs, given its path as the
// process sees it (/proc/PID/maps, /proc/PID/exe; a " (deleted)" suffix is
// allowed), best first:
//   /proc/PID/map_files/START-END (when map_end > map_start): exactly the
//     mapped file, even deleted or replaced since; needs CAP_SYS_ADMIN;
//   /proc/PID/root/PATH: the path in the process's own root and mount
//     namespace (containers, chroots).
// Never the bare path: in a container it may name another file, or none.
// Open what these name with native::ElfFile (regular files only, never blocking).
std::vector<std::string> target_file_paths(std::uint32_t pid, std::string_view path, std::uint64_t map_start = 0,
                                           std::uint64_t map_end = 0, const std::string& proc_root = "/proc");

}  // namespace loopstall
