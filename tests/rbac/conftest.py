"""RBAC tests need no database: in CI's PostgreSQL pass they would only repeat the SQLite
pass, so they run once (see tests/support/backend.py for the executor suites' rule)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("ROLLBACK_BOT_TEST_DATABASE_URL"):
        return
    skip = pytest.mark.skip(reason="real-plane RBAC tests run in the SQLite pass only")
    for item in items:
        if item.nodeid.startswith("tests/rbac/"):
            item.add_marker(skip)
