"""Where the things under test are. LOOPSTALL_BIN, LOOPSTALLD_BIN and LOOPSTALL_SCHEMA override."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKLOADS = REPO / "tests" / "workloads"
LOOPSTALL = Path(os.environ.get("LOOPSTALL_BIN", str(REPO / "build" / "loopstall")))
LOOPSTALLD = Path(os.environ.get("LOOPSTALLD_BIN", str(REPO / "build" / "loopstalld")))
# The contract's copy of the event schema (docs/contract/ must equal /work/shared/contract/).
SCHEMA_PATH = Path(os.environ.get("LOOPSTALL_SCHEMA", str(REPO / "docs" / "contract" / "stall-event.schema.json")))
PY = "/usr/bin/python3.11"  # Debian's interpreter: the one with gevent, gunicorn and confluent_kafka
