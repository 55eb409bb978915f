"""docs/contract/ is the project's copy of the shared contract: the tests validate
against it, so it must not drift from ../shared/contract/ when that is present."""
import filecmp
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "contract"


@pytest.mark.parametrize("name", ["stall-event.schema.json", "CONTRACT.md"])
def test_contract_copy_matches_shared(name):
    if not (SHARED / name).exists():
        pytest.skip(f"{SHARED} not present (only the project's copy is checked out)")
    assert filecmp.cmp(ROOT / "docs" / "contract" / name, SHARED / name, shallow=False), \
        f"docs/contract/{name} differs from {SHARED / name}: copy the contract again"
