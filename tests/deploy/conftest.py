"""Fixtures for the deployment tests (helpers: deploy_helpers.py and tests/harness/).

Run: /usr/bin/python3.11 -m pytest tests/deploy
"""
from harness.fixtures import kill_leftovers, kill_test_children  # noqa: F401 (fixtures)
