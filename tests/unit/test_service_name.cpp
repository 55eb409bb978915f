// service_name: the one owner of `service` — rules, sources, bounds, gunicorn
// workers, hostile environments; fake /proc and runtime trees.
#include <doctest/doctest.h>

#include "loopstall/config.hpp"
#include "loopstall/service_name.hpp"
#include "test_util.hpp"

using namespace loopstall;
using loopstall::test::TempDir;
using namespace std::string_literals;

namespace {

const std::string kHex64 = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa00";
const std::string kHex12 = kHex64.substr(0, 12);
const std::string kPodUid = "8a3b6e1c-22f1-4c1e-9f0a-1b2c3d4e5f60";

std::string unit_or_container(std::string_view cg) {
  std::string u = systemd_unit_from_cgroup(cg);
  return u.empty() ? container_id_from_cgroup(cg).substr(0, 12) : u;
}

// A process as inspect_process would give it, with its /proc files under root.
struct Fake {
  TempDir root;
  ProcInfo add(std::uint32_t pid, std::uint32_t ppid, const std::string& cmdline_nul, const std::string& comm,
               const std::string& cgroup = "", const std::string& environ = "") {
    const std::string dir = std::to_string(pid);
    root.write(dir + "/cmdline", cmdline_nul);
    root.write(dir + "/stat", dir + " (" + comm + ") S " + std::to_string(ppid) + " 1 1 0 -1\n");
    if (!environ.empty()) root.write(dir + "/environ", environ);
    ProcInfo p;
    p.pid = pid;
    p.comm = comm;
    p.cmdline = cmdline_nul;
    while (!p.cmdline.empty() && p.cmdline.back() == '\0') p.cmdline.pop_back();
    for (char& c : p.cmdline)
      if (c == '\0') c = ' ';
    p.cgroup = cgroup;
    p.unit = systemd_unit_from_cgroup(cgroup);
    return p;
  }
  std::string name(const ProcInfo& p, const ServiceNaming& n = ServiceNaming::defaults()) const {
    ServiceNaming with_root = n;
    with_root.host_root = root.path().string() + "/host";
    return service_name(p, with_root, root.path().string());
  }
};

ServiceNaming naming(const std::string& rules_json) {
  return parse_config(R"({"service_names": )" + rules_json + "}").naming;
}

}  // namespace

TEST_CASE("systemd unit and container id from cgroups: cgroup v2") {
  CHECK(unit_or_container("0::/system.slice/gunicorn.service\n") == "gunicorn.service");
  CHECK(unit_or_container("0::/system.slice/gunicorn.service") == "gunicorn.service");
  CHECK(unit_or_container("0::/system.slice/app@2.service\n") == "app@2.service");
  // A container runtime's systemd scope: the short container id.
  CHECK(unit_or_container("0::/system.slice/docker-" + kHex64 + ".scope\n") == kHex12);
  CHECK(unit_or_container("0::/machine.slice/libpod-" + kHex64 + ".scope\n") == kHex12);
  CHECK(unit_or_container("0::/system.slice/docker-" + kHex64 + ".scope/init.scope\n") == kHex12);
  // Kubernetes, systemd cgroup driver.
  CHECK(unit_or_container("0::/kubepods.slice/kubepods-burstable.slice/"
                          "kubepods-burstable-pod8a3b6e1c_22f1_4c1e_9f0a_1b2c3d4e5f60.slice/cri-containerd-" +
                          kHex64 + ".scope\n") == kHex12);
  CHECK(unit_or_container("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/crio-" + kHex64 +
                          ".scope\n") == kHex12);
  // cgroupfs driver: the bare id.
  CHECK(unit_or_container("0::/docker/" + kHex64 + "\n") == kHex12);
  CHECK(unit_or_container("0::/kubepods/burstable/pod8a3b6e1c-22f1-4c1e-9f0a-1b2c3d4e5f60/" + kHex64 + "\n") == kHex12);
  // Rootless podman: the container's own sub-cgroup below the scope.
  CHECK(unit_or_container("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kHex64 +
                          ".scope/container\n") == kHex12);
  // Neither a service nor a container.
  CHECK(unit_or_container("0::/user.slice/user-1000.slice/session-3.scope\n") == "");
  CHECK(unit_or_container("0::/init.scope\n") == "");
  CHECK(unit_or_container("0::/\n") == "");
}

TEST_CASE("systemd unit and container id from cgroups: cgroup v1 and hybrid") {
  const std::string v1 =
      "12:memory:/system.slice/wrong.service\n"
      "11:cpu,cpuacct:/\n"
      "10:devices:/system.slice/wrong.service\n"
      "1:name=systemd:/system.slice/redis-server.service\n";
  CHECK(unit_or_container(v1) == "redis-server.service");
  // name=systemd first, other controllers after it do not override it.
  const std::string v1_first =
      "1:name=systemd:/system.slice/redis-server.service\n"
      "12:memory:/system.slice/wrong.service\n";
  CHECK(unit_or_container(v1_first) == "redis-server.service");
  // Only controllers: the first path.
  CHECK(unit_or_container("4:pids:/system.slice/nginx.service\n3:memory:/other.service\n") == "nginx.service");
  // Docker on cgroup v1.
  CHECK(unit_or_container("12:memory:/docker/" + kHex64 + "\n1:name=systemd:/docker/" + kHex64 + "\n") == kHex12);
  // Hybrid: the unified ("0::") line wins.
  const std::string hybrid =
      "12:memory:/system.slice/wrong.service\n"
      "1:name=systemd:/system.slice/wrong2.service\n"
      "0::/system.slice/gunicorn.service\n";
  CHECK(unit_or_container(hybrid) == "gunicorn.service");
}

TEST_CASE("systemd unit and container id from cgroups: garbage") {
  CHECK(unit_or_container("") == "");
  CHECK(unit_or_container("\n\n\n") == "");
  CHECK(unit_or_container("garbage") == "");
  CHECK(unit_or_container("0:") == "");
  CHECK(unit_or_container(":::") == "");
  CHECK(unit_or_container(std::string("0::/a\0b.service", 15)) == std::string("a\0b.service", 11));
  // A short hex word is not a container id.
  CHECK(unit_or_container("0::/docker/abcdef\n") == "");
  CHECK(unit_or_container("0::/system.slice/docker-abcdef.scope\n") == "");
}

TEST_CASE("pod uid from Kubernetes cgroups (systemd and cgroupfs drivers)") {
  CHECK(pod_uid_from_cgroup("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a3b6e1c_22f1_4c1e_"
                            "9f0a_1b2c3d4e5f60.slice/cri-containerd-" +
                            kHex64 + ".scope\n") == kPodUid);
  CHECK(pod_uid_from_cgroup("0::/kubepods/burstable/pod" + kPodUid + "/" + kHex64 + "\n") == kPodUid);
  CHECK(pod_uid_from_cgroup("0::/system.slice/gunicorn.service\n") == "");
  CHECK(pod_uid_from_cgroup("0::/kubepods/podnot-a-uid/x\n") == "");
}

TEST_CASE("environ_value: exact names, hostile text") {
  const std::string env = "PATH=/bin\0OTEL_SERVICE_NAME=checkout\0OTEL_SERVICE_NAME_X=no\0"s;
  CHECK(environ_value(env, "OTEL_SERVICE_NAME") == "checkout");
  CHECK(environ_value(env, "PATH") == "/bin");
  CHECK_FALSE(environ_value(env, "OTEL").has_value());
  CHECK_FALSE(environ_value("", "X").has_value());
  CHECK_FALSE(environ_value("X", "X").has_value());  // no '='
  CHECK(environ_value("X=", "X") == "");
  CHECK_FALSE(environ_value(std::string(100000, '\0'), "X").has_value());
}

TEST_CASE("script_name: interpreters, modules, gunicorn and uwsgi") {
  CHECK(script_name("/usr/bin/python3.11 -u /srv/app/worker.py --port 8000") == "worker");
  CHECK(script_name("python3 -X dev -W ignore app.py") == "app");
  CHECK(script_name("/usr/bin/python3 -m celery -A proj worker") == "celery");
  CHECK(script_name("python3 -mhttp.server 8000") == "http.server");
  CHECK_FALSE(script_name("python3 -c 'import time'").has_value());
  CHECK_FALSE(script_name("python3").has_value());
  CHECK_FALSE(script_name("python3 -").has_value());
  CHECK(script_name("/usr/bin/python3 /usr/bin/gunicorn -w 4 -k gevent shop.wsgi:application") == "shop.wsgi");
  CHECK(script_name("/usr/bin/gunicorn --bind :8000 app:app") == "app");
  CHECK(script_name("/usr/bin/python3.11 -m gunicorn -k gevent -w 2 gunicorn_app:app") == "gunicorn_app");
  CHECK(is_prefork_server("/usr/bin/python3.11 -m gunicorn -k gevent gunicorn_app:app"));
  CHECK(is_prefork_server("/usr/bin/python3 /usr/bin/gunicorn app:app"));
  CHECK(is_prefork_server("gunicorn: worker [app:app]"));
  CHECK_FALSE(is_prefork_server("/usr/bin/python3 app.py --name gunicorn"));
  CHECK_FALSE(is_prefork_server("python3 -c import gunicorn"));
  CHECK(script_name("/usr/bin/gunicorn --config x.py") == "gunicorn");
  CHECK(script_name("gunicorn: worker [shop.wsgi:application]") == "shop.wsgi");
  CHECK(script_name("gunicorn: master [app:app]") == "app");
  CHECK(script_name("/usr/bin/uwsgi --http :9090 --module api.wsgi:app --gevent 100") == "api.wsgi");
  CHECK(script_name("uwsgi --wsgi-file /srv/foo/run.py") == "run");
  CHECK_FALSE(script_name("/usr/sbin/nginx -g daemon off;").has_value());  // not an interpreter
  CHECK_FALSE(script_name("").has_value());
  // Hostile: a 4 KiB script name is cut.
  CHECK(script_name("python3 " + std::string(4000, 'a') + ".py")->size() == kMaxServiceNameBytes);
}

TEST_CASE("bounded_name: cut at 128 bytes on a UTF-8 boundary, empty is no name") {
  CHECK_FALSE(bounded_name("").has_value());
  CHECK(bounded_name("api") == "api");
  std::string euros;
  for (int i = 0; i < 60; ++i) euros += "\xe2\x82\xac";  // 180 bytes
  const auto cut = bounded_name(euros);
  REQUIRE(cut.has_value());
  CHECK(cut->size() == 126);  // 42 whole euro signs
  CHECK(bounded_name(std::string(500, 'x'))->size() == kMaxServiceNameBytes);
}

TEST_CASE("default rules: OTEL_SERVICE_NAME, then systemd unit, then script, then comm") {
  Fake f;
  const auto otel = f.add(10, 1, "python3\0app.py\0"s, "python3", "0::/system.slice/web.service\n",
                          "HOME=/\0OTEL_SERVICE_NAME=checkout\0"s);
  CHECK(f.name(otel) == "checkout");
  const auto unit = f.add(11, 1, "python3\0app.py\0"s, "python3", "0::/system.slice/web.service\n", "HOME=/\0"s);
  CHECK(f.name(unit) == "web.service");
  const auto script = f.add(12, 1, "/usr/bin/python3.11\0-u\0tests/gevent_cpu.py\0--ms\0300\0"s, "python3.11",
                            "0::/user.slice/user-0.slice/session-1.scope\n");
  CHECK(f.name(script) == "gevent_cpu");
  const auto comm = f.add(13, 1, "python3\0-c\0pass\0"s, "python3.11", "");
  CHECK(f.name(comm) == "python3.11");
  // An empty OTEL_SERVICE_NAME names nothing: the next rule does.
  const auto empty = f.add(14, 1, "python3\0a.py\0"s, "python3", "", "OTEL_SERVICE_NAME=\0"s);
  CHECK(f.name(empty) == "a");
  // No environ file (another user's process without CAP_SYS_PTRACE): the next rule.
  const auto gone = f.add(15, 1, "python3\0b.py\0"s, "python3", "");
  CHECK(f.name(gone) == "b");
}

TEST_CASE("gunicorn workers are named as their master, also when setproctitle renamed them") {
  Fake f;
  const auto master = f.add(100, 1, "/usr/bin/python3\0/usr/bin/gunicorn\0-w\0002\0shop.wsgi:app\0"s, "gunicorn");
  const auto worker = f.add(101, 100, "gunicorn: worker [shop.wsgi:app]\0"s, "gunicorn");
  CHECK(f.name(master) == "shop.wsgi");
  CHECK(f.name(worker) == "shop.wsgi");
  // An env rule reads the master's environment.
  f.root.write("100/environ", "OTEL_SERVICE_NAME=shop\0"s);
  CHECK(f.name(worker) == "shop");
  // A cmdline rule sees the master's command line.
  const auto n = naming(R"J([{"from": "cmdline", "regex": "gunicorn .*-w"}, {"from": "comm"}])J");
  CHECK(f.name(worker, n) == "gunicorn -w");
  // A gunicorn whose parent is not one (the master itself) keeps its own.
  const auto lone = f.add(102, 1, "gunicorn: master [x:y]\0"s, "gunicorn");
  CHECK(f.name(lone) == "x");
}

TEST_CASE("configured rules: regex capture, fixed name, exe, cgroup, none") {
  Fake f;
  const auto p = f.add(20, 1, "python3\0serve.py\0--service-name=billing\0"s, "python3",
                       "0::/system.slice/apps.slice/billing-7.scope\n");
  CHECK(f.name(p, naming(R"J([{"from": "cmdline", "regex": "--service-name=(\\S+)"}])J")) == "billing");
  CHECK(f.name(p, naming(R"J([{"from": "cmdline", "regex": "serve\\.py", "name": "api"}])J")) == "api");
  CHECK(f.name(p, naming(R"J([{"from": "cgroup", "regex": "/([a-z]+)-[0-9]+\\.scope$"}])J")) == "billing");
  // No match and no further rule: "".
  CHECK(f.name(p, naming(R"J([{"from": "cmdline", "regex": "celery"}])J")) == "");
  CHECK(f.name(p, naming("[]")) == "");
  // An empty capture names nothing: the next rule does.
  CHECK(f.name(p, naming(R"J([{"from": "cmdline", "regex": "serve()"}, {"from": "comm"}])J")) == "python3");
}

TEST_CASE("naming rules in the configuration: errors name the key") {
  const auto bad = [](const std::string& rules) {
    try {
      parse_config(R"({"service_names": )" + rules + "}");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(bad(R"([{"from": "nope"}])").find("service_names[0].from: must be one of") != std::string::npos);
  CHECK(bad(R"([{"from": "env"}])").find("service_names[0].var: required") != std::string::npos);
  CHECK(bad(R"([{"from": "cmdline"}])").find("service_names[0].regex: required") != std::string::npos);
  CHECK(bad(R"([{"from": "comm", "regex": "x"}])").find("service_names[0]: regex and name") != std::string::npos);
  CHECK(bad(R"([{"from": "env", "var": "A=B"}])").find("service_names[0].var") != std::string::npos);
  CHECK(bad(R"([{"from": "exe", "regex": "(a"}])").find("invalid regular expression") != std::string::npos);
  CHECK(bad(R"({"from": "comm"})").find("must be an array") != std::string::npos);
  CHECK(bad(R"([{"from": "comm"}])") == "accepted");
}

TEST_CASE("Kubernetes and container names from the runtimes' files") {
  Fake f;
  const std::string k8s_cg =
      "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a3b6e1c_22f1_4c1e_"
      "9f0a_1b2c3d4e5f60.slice/cri-containerd-" +
      kHex64 + ".scope\n";
  const auto pod = f.add(30, 1, "python3\0app.py\0"s, "python3", k8s_cg);
  const auto k8s = naming(R"J([{"from": "kubernetes"}])J");
  CHECK(f.name(pod, k8s) == "");  // nothing readable
  // The kubelet's pod directory: one container names it.
  f.root.write("host/var/lib/kubelet/pods/" + kPodUid + "/containers/checkout/0", "");
  CHECK(f.name(pod, k8s) == "checkout");
  f.root.write("host/var/lib/kubelet/pods/" + kPodUid + "/containers/istio-proxy/0", "");
  CHECK(f.name(pod, k8s) == "");  // two: cannot tell which
  // containerd's CRI annotations name exactly this container.
  f.root.write("host/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kHex64 + "/config.json",
               R"({"annotations": {"io.kubernetes.cri.container-name": "checkout",
                   "io.kubernetes.cri.sandbox-name": "checkout-7d9f8b7c5-abcde"}})");
  CHECK(f.name(pod, k8s) == "checkout");
  // Default rules: an OTEL name still comes first.
  CHECK(f.name(pod) == "checkout");

  const auto docker = f.add(31, 1, "python3\0app.py\0"s, "python3", "0::/system.slice/docker-" + kHex64 + ".scope\n");
  const auto ctr = naming(R"J([{"from": "container"}])J");
  CHECK(f.name(docker, ctr) == "");
  f.root.write("host/var/lib/docker/containers/" + kHex64 + "/config.v2.json", R"({"Name": "/payments-1"})");
  CHECK(f.name(docker, ctr) == "payments-1");
  f.root.write("host/var/lib/docker/containers/" + kHex64 + "/config.v2.json",
               R"({"Name": "/proj-payments-1", "Config": {"Labels": {"com.docker.compose.service": "payments"}}})");
  CHECK(f.name(docker, ctr) == "payments");
  CHECK(f.name(docker, naming(R"J([{"from": "container_id"}])J")) == kHex12);
  // Garbage and oversized runtime files name nothing (and do not throw).
  f.root.write("host/var/lib/docker/containers/" + kHex64 + "/config.v2.json", "{\"Name\": ");
  CHECK(f.name(docker, ctr) == "");
  f.root.write("host/var/lib/docker/containers/" + kHex64 + "/config.v2.json",
               R"({"Name": ")" + std::string(kMaxRuntimeFileBytes, 'x') + R"("})");
  CHECK(f.name(docker, ctr) == "");
}
