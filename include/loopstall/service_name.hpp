// The one owner of a process's `service` name: the same value goes to JSON
// events, the `service` metric label and alerts. Operators choose how a
// service is named with ordered rules (config "service_names"); the first
// rule that yields a name wins, and "" means no rule named the process.
//
// Everything read here is chosen by whoever starts the process (environment,
// command line, container names): reads are bounded and names are cut to
// kMaxServiceNameBytes.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loopstall/procinfo.hpp"

namespace re2 {
class RE2;
}

namespace loopstall {

// Longest service name kept (bytes); longer names are cut.
inline constexpr std::size_t kMaxServiceNameBytes = 128;
// Bytes of /proc/PID/environ searched for an `env` rule.
inline constexpr std::size_t kMaxEnvironBytes = 64 << 10;
// Container runtime and kubelet files read for names.
inline constexpr std::size_t kMaxRuntimeFileBytes = 1 << 20;

struct ServiceRule {
  enum class From {
    Env,          // the value of environment variable `var` (e.g. OTEL_SERVICE_NAME)
    SystemdUnit,  // the process's systemd unit, e.g. "gunicorn.service"
    Kubernetes,   // the Kubernetes container name (CRI annotations, kubelet pod directory)
    Container,    // the container's name (compose service label, docker name)
    ContainerId,  // the first 12 hex digits of the container id (changes on every restart)
    Cmdline,      // a regex on the command line, exe path or cgroup path: capture
    Exe,          //   group 1 (or the whole match), or `name` when given
    Cgroup,
    Script,  // the Python script or module (`python app.py` -> app; gunicorn/uwsgi: the app module)
    Comm,    // the process name
  };
  From from = From::Comm;
  std::string var;                          // Env
  std::shared_ptr<const re2::RE2> pattern;  // Cmdline, Exe, Cgroup
  std::string name;                         // Cmdline, Exe, Cgroup: fixed name on a match
};

struct ServiceNaming {
  std::vector<ServiceRule> rules;
  // Where the container runtimes' and kubelet's state is found: the host's
  // root through PID 1, so a daemon in a pod (hostPID) or a mount namespace
  // of its own sees the host's /run/containerd and /var/lib/kubelet.
  std::string host_root = "/proc/1/root";
  // OTEL_SERVICE_NAME, systemd unit, Kubernetes, container, script, comm.
  static const ServiceNaming& defaults();
};

// "from" values as the configuration spells them; nullopt for an unknown one.
std::optional<ServiceRule::From> service_source(std::string_view from);
const char* to_string(ServiceRule::From from);

// The service name of process p (read from /proc under proc_root): the first
// rule that names it, else "". gunicorn and uwsgi workers are named as their
// master is.
std::string service_name(const ProcInfo& p, const ServiceNaming& naming, const std::string& proc_root = "/proc");

// --- pieces, exposed for tests ---------------------------------------------
// The systemd unit of a process from the text of /proc/PID/cgroup; "" if none
// (user sessions and user@.service managers are not an app's unit).
std::string systemd_unit_from_cgroup(std::string_view cgroup_text);
// The cgroup path the naming looks at (v2, else v1 name=systemd, else any).
std::string_view cgroup_path(std::string_view cgroup_text);
// Full container id (64 hex) from a cgroup path; "" if none.
std::string container_id_from_cgroup(std::string_view cgroup_text);
// Kubernetes pod UID from a cgroup path (systemd's '_' turned back to '-'); "" if none.
std::string pod_uid_from_cgroup(std::string_view cgroup_text);
// The value of `var` in NUL-separated environ text; nullopt when absent.
std::optional<std::string> environ_value(std::string_view environ_text, std::string_view var);
// `python app.py` -> "app", `python -m pkg.mod` -> "pkg.mod", `gunicorn app:wsgi` -> "app",
// "gunicorn: worker [app:wsgi]" -> "app"; cmdline as ProcInfo holds it (args joined by spaces).
std::optional<std::string> script_name(std::string_view cmdline);
// Whether a command line is a gunicorn or uwsgi process (master or worker).
bool is_prefork_server(std::string_view cmdline);
// A name as it is kept: cut to kMaxServiceNameBytes at a UTF-8 boundary,
// nullopt when empty.
std::optional<std::string> bounded_name(std::string_view name);

}  // namespace loopstall
