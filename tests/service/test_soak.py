"""Soak (issue 10): everything a busy host and a hostile local user do, at once, against one daemon,
while a control process keeps stalling; the daemon must stay flat and keep reporting.

At once, for LOOPSTALL_SOAK_SECONDS (default 40: the CI form; e.g. 3600 for the long form, see
docs/security.md):
- process churn: short asyncio processes of python3.11, 4 at a time, as many as fit;
- gunicorn with gevent workers recycled by --max-requests under a small wrk load;
- control-socket abuse: captures that vanish with their answer unread, garbage requests, clients
  that never send anything, a capture client that never reads (dropped at 8 MiB);
- the metrics port: slowloris connections trickling a byte every 200 ms, waves of idle connections;
- a `loopstall capture` through the daemon whose stdout nobody reads, and one writing to a full disk;
- the control process: gevent burning 300 ms of CPU every second (nice -20).

Asserted: /healthz answers 200 within 1 s throughout; the control process's stalls are in the
daemon's event log while the abuse goes on; RSS flat (the last third of the run against the middle
third: the first sizes the allocator's pools); BPF map occupancy and the daemon's fds back to their
baseline once the abuse stops. Traffic goes to 127.0.0.1 only; every wait is bounded."""
import json
import os
import resource
import select
import signal
import socket
import threading
import time

import pytest

import service_harness as h
from service_harness import Daemon, Proc, Workload

SOAK_SECONDS = float(os.environ.get("LOOPSTALL_SOAK_SECONDS", "40"))
NO_QUARANTINE = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def map_entries(d):
    _, samples = h.parse_exposition(d.metrics_text())
    return {l["map"]: v for n, l, v in samples if n == "loopstall_bpf_map_entries"}


class Abuse:
    """Runs each abuser in a thread until stop(); counts what each did and any failure."""

    def __init__(self):
        self.stopping = threading.Event()
        self.threads, self.counts, self.errors, self.slowest, self.diagnosis = [], {}, [], {}, []
        self.lock = threading.Lock()

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def worst(self, what, seconds):
        with self.lock:
            self.slowest[what] = max(self.slowest.get(what, 0), round(seconds, 2))

    def start(self, name, fn):
        def run():
            try:
                while not self.stopping.is_set():
                    fn()
            except Exception as e:  # noqa: BLE001 -- reported by the test, not lost in a thread
                self.errors.append(f"{name}: {e!r}")
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def sleep(self, s):
        self.stopping.wait(s)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)
        return [t.name for t in self.threads if t.is_alive()]


def control_abuser(d, abuse):
    """One round: a capture that vanishes unread, a garbage request, a client that says nothing."""
    def round_():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(str(d.sock))
            t0 = time.monotonic()
            s.sendall(b'{"cmd":"capture","threshold_ms":10,"format":"text"}\n')
            assert select.select([s], [], [], 20)[0], "no answer to a capture request"
            abuse.count("vanished captures")  # the {"ok":true} line arrived: close without reading it
            abuse.worst("capture answer", time.monotonic() - t0)
        finally:
            s.close()
        for payload in (b"\xff\xfe\n", b'{"cmd":"capture","pids":"x"}\n', b'{"cmd":"st\x1batus"}\n'):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(20)
            t0 = time.monotonic()
            try:
                s.connect(str(d.sock))
                s.sendall(payload)
                answer = s.recv(4096)
                assert b'"ok":false' in answer, answer
                abuse.count("garbage requests")
                abuse.worst("control answer", time.monotonic() - t0)
            finally:
                s.close()
        mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mute.connect(str(d.sock))  # says nothing: closed by the daemon after 5 s
        abuse.count("mute clients")
        abuse.sleep(1.5)  # each capture makes the daemon classify every process on the host
        mute.close()
    return round_


def never_reading_capture(d, abuse):
    """A capture at 1 ms (every loop iteration over 1 ms on the host is an event) that never
    reads: the daemon buffers up to 8 MiB for it, then drops it."""
    def once():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(str(d.sock))
        try:
            s.sendall(b'{"cmd":"capture","threshold_ms":1,"format":"json"}\n')
            abuse.count("never-reading captures")
            abuse.sleep(10)
        finally:
            s.close()
    return once


def slowloris(d, abuse):
    def once():
        s = socket.create_connection((d.metrics_host, d.metrics_port), timeout=2)
        try:
            abuse.count("slowloris connections")
            for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-a: b\r\n" * 1000:
                if abuse.stopping.is_set():
                    return
                s.send(bytes([b]))
                time.sleep(0.2)
        except OSError:
            abuse.count("slowloris cut off by the daemon")
        finally:
            s.close()
    return once


def idle_connections(d, abuse):
    def once():
        conns = []
        try:
            for _ in range(200):
                conns.append(socket.create_connection((d.metrics_host, d.metrics_port), timeout=5))
            abuse.count("idle connections", len(conns))
            abuse.sleep(3)
        finally:
            for c in conns:
                c.close()
    return once


def thread_dump(pid):
    """Where each thread of pid is, from /proc: state, syscall (or "running"), kernel stack. (Not
    gdb: stopping the daemon would fail the probes that follow.)"""
    out = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        base = f"/proc/{pid}/task/{tid}"
        try:
            comm = open(f"{base}/comm").read().strip()
            stat = open(f"{base}/stat").read().rsplit(")", 1)[1].split()[0]
            syscall = open(f"{base}/syscall").read().strip()
            kstack = open(f"{base}/stack").read().strip().replace("\n", " <- ")
        except OSError as e:
            out.append(f"{tid}: {e}")
            continue
        out.append(f"{tid} {comm} {stat} syscall {syscall} kernel: {kstack}")
    return "\n".join(out)


def healthz_prober(d, abuse, latencies):
    """GET /healthz every 0.5 s: (time since start, status, seconds). At the first failure, where
    the daemon's threads are (once)."""
    t_start = time.monotonic()

    def once():
        t0 = time.monotonic()
        status, _ = h.http_get(f"http://{d.metrics_addr}/healthz", timeout=5)
        latencies.append((status, time.monotonic() - t0, round(t0 - t_start, 1)))
        if (status != 200 or time.monotonic() - t0 >= 1.0) and not abuse.diagnosis:
            abuse.diagnosis.append(f"at {t0 - t_start:.1f} s: /healthz {status}\n" + thread_dump(d.pid))
        abuse.sleep(0.5)
    return once


@pytest.fixture
def full_disk(tmp):
    """A 64 KiB tmpfs with one page free."""
    with h.nearly_full_tmpfs(tmp / "full", free_pages=1) as mnt:
        yield mnt


def test_soak_everything_at_once(bpf, tmp, full_disk):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    d = Daemon(tmp, env=NO_QUARANTINE)
    pid = d.pid
    time.sleep(2)  # first sweep and metrics refresh
    base = {"fds": fd_count(pid), "maps": map_entries(d), "rss": rss_mb(pid),
            "watched": d.status()["watched_processes"]}

    control = Workload("gevent_stall.py", "cpu", "--ms", 300, "--count", 0, "--gap", 0.7, "--warmup", 0.5)
    port = h.free_port()
    gunicorn = Proc([h.PY, "-m", "gunicorn", "--chdir", h.WORKLOADS, "-k", "gevent", "-w", 2, "--max-requests", 300,
                     "--max-requests-jitter", 50, "-b", f"127.0.0.1:{port}", "--log-level", "info",
                     "wsgi_hello:app"], name="gunicorn")
    h.wait_for(lambda: h.http_get(f"http://127.0.0.1:{port}/", 2)[0] == 200 or not gunicorn.alive(), 30,
               what="gunicorn answering", describe=gunicorn.describe)
    t_start = time.monotonic()
    wrk = Proc(["nice", "-n", 19, "wrk", "-t1", "-c2", f"-d{int(SOAK_SECONDS)}s", f"http://127.0.0.1:{port}/"],
               name="wrk")
    churn = Proc([h.PY, str(h.WORKLOADS / "churn.py"), "--count", 10 ** 9, "--parallel", 4, "--seconds", SOAK_SECONDS,
                  "--tag", "loopstall-soak"], name="churn")
    stuck_out_r, stuck_out_w = os.pipe()  # a capture's stdout nobody reads
    stuck = Proc([h.LOOPSTALL, "capture", "--socket", d.sock, "--threshold-ms", 1, "--format", "json"],
                 name="capture-stuck-stdout", stdout=stuck_out_w)
    os.close(stuck_out_w)
    on_full = Proc([h.LOOPSTALL, "capture", "--socket", d.sock, "--threshold-ms", 1, "--format", "json",
                    "--output", full_disk / "capture.jsonl"], name="capture-full-disk")

    abuse, latencies = Abuse(), []
    abuse.start("control", control_abuser(d, abuse))
    abuse.start("never-reading", never_reading_capture(d, abuse))
    for i in range(2):
        abuse.start(f"slowloris{i}", slowloris(d, abuse))
    abuse.start("idle", idle_connections(d, abuse))
    abuse.start("healthz", healthz_prober(d, abuse, latencies))

    samples = []  # (seconds since start, rss MB, fds, map entries)
    try:
        while time.monotonic() - t_start < SOAK_SECONDS:
            assert d.alive(), d.describe()
            samples.append((time.monotonic() - t_start, rss_mb(pid), fd_count(pid), map_entries(d)))
            time.sleep(2)
    finally:
        stuck_threads = abuse.stop()
        for p in (wrk, churn, stuck, on_full):
            if p.alive():
                p.signal(signal.SIGTERM)
    t_end = time.monotonic() - t_start
    assert not stuck_threads, f"abusers still running: {stuck_threads}"
    assert not abuse.errors, abuse.errors
    assert d.alive(), d.describe()

    # /healthz (the liveness probe) answered every time, promptly.
    bad = [(s, round(t, 2), at) for s, t, at in latencies if s != 200 or t >= 1.0]
    worst = max(t for _, t, _ in latencies)
    assert latencies and not bad, (f"/healthz failed or slow under abuse, (status, seconds, at s): {bad}\n"
                                   f"{abuse.diagnosis[0] if abuse.diagnosis else ''}\n{d.describe()}")

    # The control process's stalls were reported during the abuse: one a second, each >= 250 ms.
    starts = [int(l.split()[1]) for _, l in control.out if l.startswith("STALL_START")]
    control.kill()
    assert len(starts) >= SOAK_SECONDS * 0.6, f"the control process stalled only {len(starts)} times"

    # What ran: enough to matter.
    churn_line = churn.wait_line(lambda l: l.startswith("CHURN "), 30, "out")
    started = int(churn_line.split("started=")[1].split()[0])
    wrk.wait(30)
    recycled = sum("Booting worker" in l for _, l in gunicorn.err) - 2
    gunicorn.kill()
    assert stuck.wait(10) == 0, stuck.describe()
    assert on_full.wait(10) in (0, 1), on_full.describe()  # 1: records lost to ENOSPC, said on stderr
    closing = {p.name: [l for _, l in p.err if "records written" in l or "error" in l][-2:] for p in (stuck, on_full)}
    os.close(stuck_out_r)
    assert started >= SOAK_SECONDS * 1.5, f"only {started} churn processes: {churn_line}"
    assert recycled >= 1, f"no gunicorn worker was recycled\n{gunicorn.describe()}"
    assert abuse.counts.get("vanished captures", 0) >= SOAK_SECONDS / 5, abuse.counts

    # Flat RSS: the last third against the middle third (the first sizes the allocator's pools).
    # Troughs, not averages: a capture client that stops reading holds up to 8 MiB of output until
    # the daemon drops it, so RSS is a saw; what is kept for good shows in its lowest points.
    third = len(samples) // 3
    mid = min(s[1] for s in samples[third:2 * third])
    last = min(s[1] for s in samples[2 * third:])
    # (ASan build, 40 s: troughs move by up to ~5 MB while pools settle; losing the exited processes
    # as issue 10 item 2 did grows them by ~60 MB.)
    assert last - mid < max(12.0, 0.08 * mid), (
        f"RSS grew from {mid:.1f} MB (middle third's lowest) to {last:.1f} MB (last third's lowest): "
        f"{[round(s[1], 1) for s in samples]}")

    # Once the abuse is over everything goes back: clients, connections, processes, loop slots.
    def settled():
        st = d.status()
        m = map_entries(d)
        fds = fd_count(pid)
        # (Slack for the Python processes others run on a shared host: the daemon watches them too.)
        ok = (st["control"]["clients"] <= 1 and st["control"]["captures"] == 0 and fds <= base["fds"] + 2 and
              st["watched_processes"] <= base["watched"] + 24 and
              m["loops"] <= base["maps"]["loops"] + 8 and m["procs"] <= base["maps"]["procs"] + 24 and
              m["py_threads"] <= base["maps"]["py_threads"] + 8)
        return (st, m, fds) if ok else None
    st, maps_after, fds_after = h.wait_for(
        settled, 20, interval=1, what="fds, clients, watched processes and BPF map entries back to their baseline",
        describe=lambda: f"baseline {base}; now fds {fd_count(pid)}, maps {map_entries(d)}, "
                         f"status {json.dumps(d.status())}\n{d.describe()}")
    assert st["kernel_threshold_ms"] == st["threshold_ms"], st
    peak = {k: max(s[3].get(k, 0) for s in samples) for k in base["maps"]}
    print(f"soak {t_end:.0f} s: {started} churn processes, {recycled} gunicorn workers recycled, {abuse.counts}, "
          f"slowest answers (s) {abuse.slowest}")
    print(f"RSS MB: baseline {base['rss']:.1f}, samples {[round(s[1], 1) for s in samples]}, "
          f"lowest in the middle third {mid:.1f}, in the last third {last:.1f}")
    print(f"fds: baseline {base['fds']}, peak {max(s[2] for s in samples)}, after {fds_after}")
    print(f"BPF map entries: baseline {base['maps']}, peak {peak}, after {maps_after}; watched processes: "
          f"baseline {base['watched']}, after {st['watched_processes']}")
    print(f"captures with a stuck stdout and on a full disk ended with: {closing}")
    assert d.stop(timeout=15) == 0, d.describe()
    # Repeats of the control's stall are folded into summaries (event_coalescing), the last
    # window's written at SIGTERM: each final event stands for 1 stall, or coalesced.count.
    finals = [e for e in d.final_events(control.pid) if e["duration_ms"] >= 250]
    reported = sum(e["coalesced"]["count"] if "coalesced" in e else 1 for e in finals)
    assert reported >= 0.8 * (len(starts) - 1), (
        f"{reported} of the control process's {len(starts)} stalls reported\n{d.describe()}")
    h.validate_event(finals[-1])
    print(f"/healthz: {len(latencies)} probes, worst {worst * 1000:.0f} ms; control stalls {reported} of "
          f"{len(starts)} reported ({len(finals)} events)")
