"""After the incident, as a person would: capture a gevent service with two culprits (a CPU hog
greenlet and a blocking C call) with --save, then `report`, `flamegraph` (the SVG opened in
headless Chromium), folded and speedscope output, and `diff` against the same service without the
hog."""
import gzip
import json
import os
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from conftest import WORKLOADS, run_capture, skip_or_fail, workload

SCRIPT = "gevent_two_culprits.py"
HOG_MS, BLOCK_MS, ROUNDS = 250, 400, 2
SVG_NS = "{http://www.w3.org/2000/svg}"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run_cli(binary, *args, timeout=60):
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def capture_service(binary, tmp, name, hog_ms):
    """The service runs first and waits for a go file; the capture watches only its pid, so
    stalls of other processes on the host stay out of the file."""
    go = tmp / f"{name}.go"
    w = workload(SCRIPT, "--hog-ms", hog_ms, "--block-ms", BLOCK_MS, "--rounds", ROUNDS, "--gap", "0.3",
                 "--go-file", go, "--warmup", "0.3")
    saved = tmp / f"{name}.lsc"

    def go_now():
        part = go.with_suffix(".tmp")
        part.write_text(f"{time.time():.3f}")
        part.rename(go)
        return []

    run_capture(binary, go_now, capture_args=["--pid", w.pid, "--save", saved], before=[w])
    assert saved.stat().st_size > 0
    return saved


@pytest.fixture(scope="module")
def captures(bpf_ready, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flame")
    return {"both": capture_service(bpf_ready, tmp, "both", HOG_MS),
            "no_hog": capture_service(bpf_ready, tmp, "no_hog", 0), "tmp": tmp}


def names(script):
    path = str(WORKLOADS / script)
    return f"hog_handler ({path}", f"blocking_handler ({path}"


def chromium(*args, timeout=90):
    if not CHROMIUM:
        skip_or_fail("chromium is not installed (scripts/install-deps.sh --with-tests)")
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--allow-file-access-from-files", "--virtual-time-budget=3000", *args],
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def rendered(svg_path, query=""):
    """The SVG's DOM after its script ran, from headless Chromium."""
    dom = chromium("--dump-dom", f"file://{svg_path}{query}")
    start = dom.find("<svg")
    assert start >= 0, dom[:2000]
    root = ET.fromstring(dom[start:])
    assert root.get("data-ready") == "1", "the SVG's script did not run"
    return root


def drawn_frames(root):
    """name -> (label shown, rect width) of every frame that is displayed."""
    out = {}
    for g in root.iter(f"{SVG_NS}g"):
        if g.get("class", "").split()[:1] != ["f"] or "display: none" in g.get("style", ""):
            continue
        rect, text = g.find(f"{SVG_NS}rect"), g.find(f"{SVG_NS}text")
        name = g.find(f"{SVG_NS}title").text.rsplit(" \u2014 ", 1)[0]
        out.setdefault(name, (text.text or "", float(rect.get("width"))))
    return out


def frame_named(frames, prefix):
    """The widest frame named prefix..., and the width of all of them: a Python frame is named
    with its line, so a function seen at two lines is two frames side by side."""
    hits = [(n, v) for n, v in frames.items() if n.startswith(prefix)]
    assert hits, f"no frame named {prefix}...: {sorted(frames)}"
    return max(hits, key=lambda h: h[1][1]), sum(v[1] for _, v in hits)


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG, unfiltered."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = hdr[:4]
    assert depth == 8 and ctype in (2, 6), hdr
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def screenshot(svg_path, png):
    root = ET.parse(svg_path).getroot()  # the window: the SVG's own size
    chromium(f"--screenshot={png}", f"--window-size={root.get('width')},{root.get('height')}", f"file://{svg_path}")
    w, h, bpp, rows = png_pixels(png)
    colours = {row[i:i + 3] for row in rows[::4] for i in range(0, w * bpp, bpp * 4)}
    assert len(colours) > 20, f"a nearly blank screenshot: {len(colours)} colours"
    if os.environ.get("LOOPSTALL_SCREENSHOTS"):  # docs/img is made from these
        shutil.copy(png, Path(os.environ["LOOPSTALL_SCREENSHOTS"]) / Path(png).name)
    return colours


def test_report_ranks_both_culprits(bpf_ready, captures):
    hog, blocker = names(SCRIPT)
    r = run_cli(bpf_ready, "report", captures["both"], "--format", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    funcs = [f for f in rep["python_functions"] if f["name"].startswith((hog, blocker))]
    assert [f["name"].split(" ")[0] for f in funcs[:2]] == ["blocking_handler", "hog_handler"], rep["python_functions"]
    assert funcs[0]["self_ms"] >= 0.8 * BLOCK_MS * ROUNDS and funcs[1]["self_ms"] >= 0.6 * HOG_MS * ROUNDS, funcs


def test_flamegraph_svg_draws_both_culprits_in_a_browser(bpf_ready, captures):
    svg = captures["tmp"] / "flamegraph.svg"
    r = run_cli(bpf_ready, "flamegraph", captures["both"], "-o", svg)
    assert r.returncode == 0 and not r.stdout, r.stderr
    hog, blocker = names(SCRIPT)
    frames = drawn_frames(rendered(svg))
    # Both culprits drawn under their names, as wide as their share of the stalled time.
    total = frames["all"][1]
    for prefix, share in ((hog, HOG_MS / (HOG_MS + BLOCK_MS)), (blocker, BLOCK_MS / (HOG_MS + BLOCK_MS))):
        (name, (label, _)), width = frame_named(frames, prefix)
        assert label.startswith(prefix.split(" ")[0]) and len(label) > 12, (name, label, width)
        assert width >= 0.6 * share * total, (name, width, total)
    # The blocking call: Python frame, then the C calls it made, then the syscall it blocked in.
    assert any(n.startswith("usleep (") for n in frames), sorted(frames)
    assert "[blocked: clock_nanosleep]" in frames, sorted(frames)
    screenshot(svg, captures["tmp"] / "flamegraph.png")


def test_svg_search_and_zoom(bpf_ready, captures):
    svg = captures["tmp"] / "search.svg"
    assert run_cli(bpf_ready, "flamegraph", captures["both"], "-o", svg).returncode == 0
    rep = json.loads(run_cli(bpf_ready, "report", captures["both"], "--format", "json").stdout)
    hog_share = next(f["share"] for f in rep["python_functions"] if f["name"].startswith("hog_handler"))
    root = rendered(svg, "?s=hog_handler")
    assert abs(float(root.get("data-matched")) - hog_share) < 0.02, (root.get("data-matched"), hog_share)
    matched = next(t for t in root.iter(f"{SVG_NS}text") if t.get("id") == "matched")
    assert matched.text.startswith("Matched: "), matched.text
    # Zoomed to the hog: it fills the width, the blocking call is hidden.
    frames = drawn_frames(rendered(svg, "?z=hog_handler"))
    _, width = frame_named(frames, names(SCRIPT)[0])
    assert abs(width - frames["all"][1]) < 2, (width, frames["all"])
    assert not any(n.startswith("blocking_handler") for n in frames), sorted(frames)


def test_folded_and_speedscope(bpf_ready, captures):
    rep = json.loads(run_cli(bpf_ready, "report", captures["both"], "--format", "json").stdout)
    r = run_cli(bpf_ready, "flamegraph", captures["both"], "--folded")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    weights = {}
    for line in lines:
        stack, weight = line.rsplit(" ", 1)
        weights[stack] = int(weight)
    assert abs(sum(weights.values()) / 1000 - rep["stalled_ms"]) < 1, (sum(weights.values()), rep["stalled_ms"])
    hog, blocker = names(SCRIPT)
    assert any(hog in s and s.endswith(("[on-CPU]", "[runqueue]")) for s in weights), lines
    assert any(blocker in s and s.endswith("[blocked: clock_nanosleep]") for s in weights), lines
    # The root: the service (named after the script), then the loop's framework.
    assert all(s.startswith("gevent_two_culprits [gevent];") for s in weights), lines

    out = captures["tmp"] / "profile.speedscope.json"
    assert run_cli(bpf_ready, "flamegraph", captures["both"], "--format", "speedscope", "-o", out).returncode == 0
    doc = json.loads(out.read_text())
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    prof = doc["profiles"][0]
    assert prof["type"] == "sampled" and prof["unit"] == "microseconds"
    assert len(prof["samples"]) == len(prof["weights"]) == len(weights)
    assert prof["endValue"] == sum(prof["weights"]) == sum(weights.values())
    frames = doc["shared"]["frames"]
    hog_frames = [f for f in frames if f["name"].startswith(hog)]
    assert hog_frames and all(f["file"] == str(WORKLOADS / SCRIPT) and f["line"] > 0 for f in hog_frames)


def test_diff_shows_the_hog_as_the_change(bpf_ready, captures):
    svg = captures["tmp"] / "diff.svg"
    r = run_cli(bpf_ready, "diff", captures["both"], captures["no_hog"], "-o", svg)
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    table = r.stdout.split("Python functions (self stalled time)\n", 1)[1]
    first = table.splitlines()[1].split(None, 3)
    a_ms, b_ms, delta = map(float, first[:3])
    assert first[3].startswith(names(SCRIPT)[0]), r.stdout
    assert b_ms == 0 and delta <= -0.6 * HOG_MS * ROUNDS and a_ms == -delta, r.stdout
    frames = drawn_frames(rendered(svg))
    (_, (label, _)), width = frame_named(frames, names(SCRIPT)[0])  # gone in B, still drawn (blue)
    assert label.startswith("hog_handler") and width > 50, (label, width)
    screenshot(svg, captures["tmp"] / "diff.png")


def test_bad_files_and_flags(bpf_ready, captures, tmp_path):
    data = Path(captures["both"]).read_bytes()
    bad = tmp_path / "truncated.lsc"
    bad.write_bytes(data[: len(data) // 2])
    newer = tmp_path / "newer.lsc"
    lines = gzip.decompress(data).decode().splitlines(keepends=True)
    head = json.loads(lines[0])
    head["version"] = 99
    newer.write_bytes(gzip.compress((json.dumps(head) + "\n" + "".join(lines[1:])).encode()))
    damaged = ("truncated", "corrupted")
    for args, why in ((("flamegraph", bad), damaged), (("flamegraph", newer, "--folded"), ("newer",)),
                      (("diff", captures["both"], bad, "-o", tmp_path / "d.svg"), damaged),
                      (("diff", newer, captures["both"]), ("newer",))):
        r = run_cli(bpf_ready, *args)
        assert r.returncode == 1 and r.stderr.startswith("loopstall: error: ") and not r.stdout, (args, r)
        assert any(w in r.stderr for w in why), (args, r.stderr)
    assert not (tmp_path / "d.svg").exists()
    r = run_cli(bpf_ready, "flamegraph", captures["both"], "--colour", "red")
    assert r.returncode != 0 and "--colour" in r.stderr, r.stderr
    r = run_cli(bpf_ready, "flamegraph", captures["both"], "--format", "png")
    assert r.returncode != 0 and "png" in r.stderr, r.stderr
