"""Install artefacts (the chart, the image's Dockerfile, the running guide's snippets).

They touch no database: in CI's PostgreSQL pass they would only repeat the SQLite pass, so
they run once (as tests/rbac does).
"""

from __future__ import annotations

import os

import pytest

from tests.support.realk8s import real_control_plane  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("ROLLBACK_BOT_TEST_DATABASE_URL"):
        return
    skip = pytest.mark.skip(reason="install tests touch no database: SQLite pass only")
    for item in items:
        if item.nodeid.startswith("tests/deploy/"):
            item.add_marker(skip)
