#!/usr/bin/python3
"""Rebuilds fuzz/corpus/capture_file/ from one real capture file, made as a user makes one:

    loopstall capture --standalone --save real.lsc --duration 12 &
    python3.11 tests/workloads/gevent_stall.py cpu --ms 300 &
    python3.11 tests/workloads/gevent_stall.py usleep --ms 400 &
    python3.11 tests/workloads/gevent_stall.py sleep --count 3 --ms 150
    fuzz/seeds/make_capture_seeds.py real.lsc

It keeps the file as written and derives smaller valid captures (gzip and plain JSON Lines, which
zlib reads through), a stall still in progress, and the damage a reader must refuse: truncated,
no end record, a bad CRC, a newer version, an unknown record, two gzip members, not a capture.
"""
import gzip
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "corpus" / "capture_file"


def enc(records):
    return "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in records).encode()


def gz(data):
    return gzip.compress(data, 6, mtime=0)


def main(real_path):
    raw = Path(real_path).read_bytes()
    recs = [json.loads(l) for l in gzip.decompress(raw).decode().splitlines()]
    hdr, end = recs[0], recs[-1]
    stalls = [r for r in recs if r["record"] == "stall"]
    loops = [r for r in recs if r["record"] == "loop"]
    assert len(stalls) >= 5 and len(loops) >= 3 and end["record"] == "end", "capture three workloads' stalls"
    OUT.mkdir(parents=True, exist_ok=True)
    small = [hdr, stalls[0], stalls[2], stalls[4], *loops[:3], end]
    ongoing = dict(stalls[1], event=dict(stalls[1]["event"], ongoing=True))
    bad_crc = bytearray(gz(enc(small)))
    bad_crc[-6] ^= 0xFF  # in the CRC32 of the gzip trailer
    seeds = {
        "real-gevent-3-workloads.lsc": raw,  # exactly as loopstall wrote it
        "one-each.lsc": gz(enc(small)),
        "one-each-plain.jsonl": enc([hdr, stalls[4], loops[1], end]),
        "in-progress.lsc": gz(enc([hdr, ongoing, loops[0], end])),
        "empty-capture.lsc": gz(enc([hdr, end])),
        "truncated-half.lsc": raw[:len(raw) // 2],
        "no-end-record.lsc": gz(enc([hdr, stalls[0]])),
        "bad-crc.lsc": bytes(bad_crc),
        "newer-version.lsc": gz(enc([dict(hdr, version=2), {"record": "future", "x": 1}, end])),
        "unknown-record.lsc": gz(enc([hdr, {"record": "future", "x": [1, 2]}, loops[0], end])),
        "two-members.lsc": gz(enc([hdr, stalls[4]])) + gz(enc([loops[1], end])),
        "not-a-capture.txt": b"not a capture\n",
    }
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)
        print(f"{len(data):6d} {OUT / name}")


if __name__ == "__main__":
    main(sys.argv[1])
