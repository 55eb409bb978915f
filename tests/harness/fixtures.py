"""Leftover cleanup, for a suite's conftest.py to import (pytest finds fixtures imported there):

    from harness.fixtures import kill_leftovers, kill_test_children  # noqa: F401
"""
import pytest

from harness.children import ALL, killed_on_exit


@pytest.fixture(scope="session", autouse=True)
def kill_leftovers():
    """Safety net: whatever a test left running dies at session end."""
    yield
    for p in ALL:
        p.kill()


@pytest.fixture(autouse=True)
def kill_test_children():
    """Whatever a test started dies with the test. A suite whose tests run children in a
    temporary directory should request that directory from a wrapper of its own, so the
    children die before the directory is removed (tests/service/conftest.py does)."""
    with killed_on_exit():
        yield
