"""Every event line the suites read is checked against docs/contract/stall-event.schema.json."""
import json

import pytest

from harness.paths import SCHEMA_PATH

_validator = None


def validator():
    global _validator
    if _validator is None:
        import jsonschema  # python3-jsonschema; only the suites that read events need it
        schema = json.loads(SCHEMA_PATH.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        _validator = jsonschema.Draft202012Validator(schema)
    return _validator


def validate_event(ev, line=None):
    """Fails the test with the schema errors when `ev` (parsed from `line`) violates the schema."""
    errors = sorted(validator().iter_errors(ev), key=lambda e: list(e.path))
    if errors:
        pytest.fail("event violates stall-event.schema.json:\n  " +
                    "\n  ".join(f"{list(e.path)}: {e.message}" for e in errors) +
                    f"\n{line if line is not None else json.dumps(ev)}", pytrace=False)


def parse_events(lines, describe=lambda: ""):
    """(recv_ns, line) pairs of a JSON Lines output -> events, each validated; each dict gets the
    arrival time of its line as '_recv_ns' (not part of the output)."""
    events = []
    for recv_ns, line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            pytest.fail(f"stdout line is not JSON (json mode must print only events): {line!r}\n{describe()}",
                        pytrace=False)
        validate_event(ev, line)
        ev["_recv_ns"] = recv_ns
        events.append(ev)
    return events


def read_event_log(path):
    """The events of a JSON Lines file being appended to (--events, --output): whole lines only, a
    record being written right now is read on the next call. Not validated: see validate_event()."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]
