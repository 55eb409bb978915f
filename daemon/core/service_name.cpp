#include "loopstall/service_name.hpp"

#include <re2/re2.h>

#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "loopstall/limits.hpp"

namespace loopstall {
namespace {

std::string_view basename(std::string_view p) {
  const auto pos = p.rfind('/');
  return pos == std::string_view::npos ? p : p.substr(pos + 1);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const auto pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    s.remove_prefix(pos + 1);
  }
}

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return !s.empty();
}

// "docker-<id>.scope", "cri-containerd-<id>.scope", "libpod-<id>.scope",
// "crio-<id>.scope", or a bare "<id>" (cgroupfs driver).
std::string_view container_id_of(std::string_view comp) {
  if (ends_with(comp, ".scope")) {
    comp.remove_suffix(6);
    const auto dash = comp.rfind('-');
    if (dash == std::string_view::npos) return {};
    comp = comp.substr(dash + 1);
  }
  return comp.size() >= 12 && comp.size() <= 128 && is_hex(comp) ? comp : std::string_view();
}

// Process ids and files of the subject being named.
struct Subject {
  std::uint32_t pid;
  std::string cmdline, comm, exe, cgroup;
};

std::string dir_of(std::uint32_t pid, const std::string& proc_root) {
  return proc_root + "/" + std::to_string(pid);
}

// gunicorn and uwsgi fork their workers from a master: the worker is named
// as its master (whose command line names the app even when setproctitle
// renamed the worker).
Subject subject_of(const ProcInfo& p, const std::string& proc_root) {
  Subject s{p.pid, p.cmdline, p.comm, p.exe, p.cgroup};
  if (!is_prefork_server(p.cmdline) && !is_prefork_server(p.comm)) return s;
  const auto ppid = parent_pid(p.pid, proc_root);
  if (!ppid) return s;
  std::string parent_cmd = read_cmdline(*ppid, proc_root).value_or("");
  if (!is_prefork_server(parent_cmd)) return s;  // p is the master
  s.pid = *ppid;
  s.cmdline = std::move(parent_cmd);
  return s;
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  const auto text = read_file_prefix(path, kMaxRuntimeFileBytes + 1);
  if (!text || text->size() > kMaxRuntimeFileBytes) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::optional<std::string> string_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object()) return std::nullopt;
    auto it = cur->find(k);
    if (it == cur->end()) return std::nullopt;
    cur = &*it;
  }
  return cur->is_string() ? bounded_name(cur->get_ref<const std::string&>()) : std::nullopt;
}

std::optional<std::string> kubernetes_name(const Subject& s, const std::string& host) {
  const std::string id = container_id_from_cgroup(s.cgroup);
  const std::string uid = pod_uid_from_cgroup(s.cgroup);
  if (uid.empty()) return std::nullopt;
  if (!id.empty()) {
    // containerd's CRI plugin keeps the OCI spec of each container, with the
    // pod's and container's names as annotations.
    if (auto j = read_json(host + "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + id + "/config.json"))
      if (auto n = string_at(*j, {"annotations", "io.kubernetes.cri.container-name"})) return n;
    // CRI-O.
    if (auto j = read_json(host + "/run/containers/storage/overlay-containers/" + id + "/userdata/config.json"))
      if (auto n = string_at(*j, {"annotations", "io.kubernetes.container.name"})) return n;
  }
  // The kubelet's pod directory has one directory per container: a pod with
  // one container names it.
  std::error_code ec;
  std::optional<std::string> only;
  int n = 0;
  for (std::filesystem::directory_iterator it(host + "/var/lib/kubelet/pods/" + uid + "/containers", ec), end;
       !ec && it != end && n < 2; it.increment(ec)) {
    if (++n == 1) only = bounded_name(it->path().filename().string());
  }
  return n == 1 ? only : std::nullopt;
}

std::optional<std::string> container_name(const Subject& s, const std::string& host) {
  const std::string id = container_id_from_cgroup(s.cgroup);
  if (id.empty()) return std::nullopt;
  if (auto j = read_json(host + "/var/lib/docker/containers/" + id + "/config.v2.json")) {
    if (auto n = string_at(*j, {"Config", "Labels", "com.docker.compose.service"})) return n;
    if (auto n = string_at(*j, {"Name"})) {
      std::string_view v = *n;
      while (!v.empty() && v.front() == '/') v.remove_prefix(1);
      return bounded_name(v);
    }
  }
  return std::nullopt;
}

std::optional<std::string> regex_name(const ServiceRule& r, const std::string& text) {
  if (!r.pattern) return std::nullopt;
  re2::StringPiece groups[2];
  const int n = r.pattern->NumberOfCapturingGroups() >= 1 ? 2 : 1;
  if (!r.pattern->Match(text, 0, text.size(), re2::RE2::UNANCHORED, groups, n)) return std::nullopt;
  if (!r.name.empty()) return bounded_name(r.name);
  const re2::StringPiece& g = groups[n - 1];
  return bounded_name(std::string_view(g.data(), g.size()));
}

std::optional<std::string> apply(const ServiceRule& r, const Subject& s, const ServiceNaming& naming,
                                 const std::string& proc_root) {
  using F = ServiceRule::From;
  switch (r.from) {
    case F::Env: {
      const auto env = read_file_prefix(dir_of(s.pid, proc_root) + "/environ", kMaxEnvironBytes);
      if (!env) return std::nullopt;
      const auto v = environ_value(*env, r.var);
      return v ? bounded_name(*v) : std::nullopt;
    }
    case F::SystemdUnit: return bounded_name(systemd_unit_from_cgroup(s.cgroup));
    case F::Kubernetes: return kubernetes_name(s, naming.host_root);
    case F::Container: return container_name(s, naming.host_root);
    case F::ContainerId: return bounded_name(std::string_view(container_id_from_cgroup(s.cgroup)).substr(0, 12));
    case F::Cmdline: return regex_name(r, s.cmdline);
    case F::Exe: return regex_name(r, std::string(strip_deleted(s.exe)));
    case F::Cgroup: return regex_name(r, std::string(cgroup_path(s.cgroup)));
    case F::Script: return script_name(s.cmdline);
    case F::Comm: return bounded_name(s.comm);
  }
  return std::nullopt;
}

constexpr std::pair<std::string_view, ServiceRule::From> kSources[] = {
    {"env", ServiceRule::From::Env},
    {"systemd_unit", ServiceRule::From::SystemdUnit},
    {"kubernetes", ServiceRule::From::Kubernetes},
    {"container", ServiceRule::From::Container},
    {"container_id", ServiceRule::From::ContainerId},
    {"cmdline", ServiceRule::From::Cmdline},
    {"exe", ServiceRule::From::Exe},
    {"cgroup", ServiceRule::From::Cgroup},
    {"script", ServiceRule::From::Script},
    {"comm", ServiceRule::From::Comm},
};

}  // namespace

std::optional<ServiceRule::From> service_source(std::string_view from) {
  for (const auto& [name, f] : kSources)
    if (name == from) return f;
  return std::nullopt;
}

const char* to_string(ServiceRule::From from) {
  for (const auto& [name, f] : kSources)
    if (f == from) return name.data();
  return "?";
}

const ServiceNaming& ServiceNaming::defaults() {
  static const ServiceNaming d = [] {
    ServiceNaming n;
    using F = ServiceRule::From;
    n.rules.push_back({F::Env, "OTEL_SERVICE_NAME", nullptr, ""});
    for (F f : {F::SystemdUnit, F::Kubernetes, F::Container, F::Script, F::Comm})
      n.rules.push_back({f, "", nullptr, ""});
    return n;
  }();
  return d;
}

std::optional<std::string> bounded_name(std::string_view name) {
  if (name.size() > kMaxServiceNameBytes) {
    name = name.substr(0, kMaxServiceNameBytes);
    // Do not leave half a UTF-8 sequence at the cut.
    std::size_t i = name.size();
    while (i > 0 && (static_cast<unsigned char>(name[i - 1]) & 0xC0) == 0x80) --i;
    if (i > 0 && static_cast<unsigned char>(name[i - 1]) >= 0xC0) name = name.substr(0, i - 1);
  }
  if (name.empty()) return std::nullopt;
  return std::string(name);
}

std::string_view cgroup_path(std::string_view text) {
  std::string_view best;
  for (auto line : split(text, '\n')) {
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    const std::string_view id = line.substr(0, c1), ctrl = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
    // cgroup v2 ("0::/path") wins; else the v1 name=systemd or any path.
    if (id == "0" && ctrl.empty()) return path;
    if (best.empty() || ctrl == "name=systemd") best = path;
  }
  return best;
}

std::string systemd_unit_from_cgroup(std::string_view text) {
  const auto comps = split(cgroup_path(text), '/');
  for (auto it = comps.rbegin(); it != comps.rend(); ++it) {
    const std::string_view c = *it;
    if (!container_id_of(c).empty()) return "";  // a container's own cgroups are not a unit
    if (c.size() > 8 && ends_with(c, ".service")) {
      // A user's service manager is not the app's service.
      if (c.rfind("user@", 0) == 0) return "";
      return std::string(c);
    }
  }
  return "";
}

std::string container_id_from_cgroup(std::string_view text) {
  const auto comps = split(cgroup_path(text), '/');
  for (auto it = comps.rbegin(); it != comps.rend(); ++it)
    if (auto id = container_id_of(*it); !id.empty()) return std::string(id);
  return "";
}

std::string pod_uid_from_cgroup(std::string_view text) {
  // cgroupfs: ".../pod<uid>/..."; systemd: "...-pod<uid with _>.slice".
  for (std::string_view c : split(cgroup_path(text), '/')) {
    if (ends_with(c, ".slice")) {
      c.remove_suffix(6);
      const auto dash = c.rfind('-');
      if (dash != std::string_view::npos) c = c.substr(dash + 1);
    }
    if (c.rfind("pod", 0) != 0 || c.size() != 3 + 36) continue;
    std::string uid(c.substr(3));
    for (char& ch : uid)
      if (ch == '_') ch = '-';
    bool ok = true;
    for (char ch : uid) ok &= ch == '-' || is_hex(std::string_view(&ch, 1));
    if (ok) return uid;
  }
  return "";
}

std::optional<std::string> environ_value(std::string_view text, std::string_view var) {
  if (var.empty()) return std::nullopt;
  for (std::string_view entry : split(text, '\0'))
    if (entry.size() > var.size() && entry[var.size()] == '=' && entry.substr(0, var.size()) == var)
      return std::string(entry.substr(var.size() + 1));
  return std::nullopt;
}

namespace {

std::vector<std::string_view> words(std::string_view cmdline) {
  std::vector<std::string_view> args;
  for (std::string_view a : split(cmdline, ' '))
    if (!a.empty()) args.push_back(a);
  return args;
}

// What a command line runs: for a Python interpreter its script (basename) or
// -m module, with the index of that word; else argv[0]'s basename at 0.
// nullopt: nothing named (-c, a script on stdin, a bare interpreter).
std::optional<std::pair<std::string_view, std::size_t>> program(const std::vector<std::string_view>& args) {
  if (args.empty()) return std::nullopt;
  if (basename(args[0]).rfind("python", 0) != 0) return std::pair{basename(args[0]), std::size_t{0}};
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string_view o = args[i];
    if (o == "-" || o.rfind("-c", 0) == 0) return std::nullopt;
    if (o == "-m") return i + 1 < args.size() ? std::optional(std::pair{args[i + 1], i + 1}) : std::nullopt;
    if (o.rfind("-m", 0) == 0) return std::pair{o.substr(2), i};
    if (o.size() < 2 || o[0] != '-') return std::pair{basename(o), i};
    if (o == "-X" || o == "-W" || o == "--check-hash-based-pycs") ++i;  // takes a value
  }
  return std::nullopt;
}

bool prefork_name(std::string_view name) {
  return name.rfind("gunicorn", 0) == 0 || name.rfind("uwsgi", 0) == 0;
}

}  // namespace

bool is_prefork_server(std::string_view cmdline) {
  if (cmdline.rfind("gunicorn:", 0) == 0 || cmdline.rfind("uwsgi", 0) == 0) return true;  // setproctitle
  const auto prog = program(words(cmdline));
  return prog && prefork_name(prog->first);
}

std::optional<std::string> script_name(std::string_view cmdline) {
  // gunicorn's setproctitle form: "gunicorn: master [app:wsgi]".
  if (cmdline.rfind("gunicorn: ", 0) == 0) {
    const auto open = cmdline.find('['), close = cmdline.rfind(']');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return "gunicorn";
    const std::string_view app = cmdline.substr(open + 1, close - open - 1);
    return bounded_name(app.substr(0, app.find(':')));
  }
  const auto args = words(cmdline);
  const auto prog = program(args);
  if (!prog) return std::nullopt;
  auto [script, i] = *prog;
  if (script.rfind("gunicorn", 0) == 0) {
    // The WSGI app: the last positional argument, "module:callable".
    for (std::size_t k = args.size(); k-- > i + 1;)
      if (args[k][0] != '-' && args[k].find(':') != std::string_view::npos)
        return bounded_name(args[k].substr(0, args[k].find(':')));
    return "gunicorn";
  }
  if (script.rfind("uwsgi", 0) == 0) {
    for (std::size_t k = i + 1; k + 1 < args.size(); ++k) {
      if (args[k] == "--module" || args[k] == "-w" || args[k] == "--wsgi")
        return bounded_name(args[k + 1].substr(0, args[k + 1].find(':')));
      if (args[k] == "--wsgi-file") {
        std::string_view f = basename(args[k + 1]);
        if (ends_with(f, ".py")) f.remove_suffix(3);
        return bounded_name(f);
      }
    }
    return "uwsgi";
  }
  if (i == 0) return std::nullopt;  // not an interpreter: comm names it
  if (ends_with(script, ".py")) script.remove_suffix(3);
  return bounded_name(script);
}

std::string service_name(const ProcInfo& p, const ServiceNaming& naming, const std::string& proc_root) {
  const Subject s = subject_of(p, proc_root);
  for (const ServiceRule& r : naming.rules)
    if (auto n = apply(r, s, naming, proc_root)) return *n;
  return "";
}

}  // namespace loopstall
