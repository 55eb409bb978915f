"""Validates the JSON Lines written by loopstall_json_samples against the
contract's stall-event schema (Draft 2020-12).

usage: validate_schema.py SCHEMA SAMPLES_WRITER
Exit 77 (ctest: skipped) when the schema file or the jsonschema module is
missing.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77


def main():
    schema_path, writer = sys.argv[1], sys.argv[2]
    if not os.path.isfile(schema_path):
        print(f"SKIP: schema {schema_path} not found (set LOOPSTALL_CONTRACT_DIR)")
        return SKIP
    try:
        import jsonschema
    except ImportError:
        print(f"SKIP: {sys.executable} has no jsonschema module")
        return SKIP

    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "samples.jsonl")
        subprocess.run([writer, out], check=True)
        with open(out, "rb") as f:
            raw = f.read()

    failures = []
    if not raw.endswith(b"\n"):
        failures.append("the output does not end with a newline")
    lines = raw.split(b"\n")[:-1]
    events = []
    for n, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8")  # strict: the sink must emit valid UTF-8
            ev = json.loads(text)
        except (UnicodeDecodeError, ValueError) as e:
            failures.append(f"line {n}: not a JSON object in UTF-8: {e}")
            continue
        events.append(ev)
        for err in validator.iter_errors(ev):
            failures.append(f"line {n}: {'/'.join(map(str, err.absolute_path))}: {err.message}")
        b = ev.get("breakdown_ms", {})
        total = b.get("on_cpu", 0) + b.get("blocked", 0) + b.get("runqueue", 0)
        if abs(total - ev.get("duration_ms", 0)) > 0.003:
            failures.append(f"line {n}: breakdown sums to {total}, duration_ms is {ev.get('duration_ms')}")

    # The samples must cover what they claim to cover.
    def covered(what, pred):
        if not any(pred(e) for e in events):
            failures.append(f"no sample event with {what}")

    covered("ongoing true", lambda e: e.get("ongoing") is True)
    covered("ongoing false", lambda e: e.get("ongoing") is False)
    covered("python_version null", lambda e: e.get("python_version") is None)
    covered("python_version string", lambda e: isinstance(e.get("python_version"), str))
    covered("python stacks", lambda e: e.get("python_stacks"))
    covered("a null frame line", lambda e: any(fr["line"] is None for s in e.get("python_stacks", []) for fr in s["frames"]))
    covered("native frames", lambda e: e.get("native_stack"))
    for loop in ("gevent", "asyncio", "epoll"):
        covered(f"loop {loop}", lambda e, loop=loop: e.get("loop") == loop)
    ids = {}
    for e in events:
        ids.setdefault(e.get("stall_id"), []).append(e.get("ongoing"))
    if not any(True in v and False in v for v in ids.values()):
        failures.append("no stall with both ongoing and final reports sharing a stall_id")

    # The validator is not vacuous: a broken event is rejected.
    if events:
        bad = copy.deepcopy(events[0])
        bad["cause"] = "bogus"
        del bad["breakdown_ms"]["gc"]
        if validator.is_valid(bad):
            failures.append("schema accepted an event with an invalid cause and no breakdown_ms.gc")

    if len(events) < 6:
        failures.append(f"only {len(events)} sample events")
    for f in failures:
        print("FAIL:", f)
    print(f"{len(events)} events checked against {schema_path}: {'FAILED' if failures else 'ok'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
