"""Read-only commands start quickly: they load no cluster client, no Slack, no web stack.

Checked in a fresh interpreter (``sys.modules`` after the command ran), so an import
added anywhere on the path shows up here rather than as a slow start in production.
The schema check reads the database's revision with one query and the newest migration
from the version files; both must agree with Alembic's own answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollback_bot.storage import db
from rollback_bot.storage.migrator import (
    _alembic_head,
    current_revision,
    downgrade,
    head_revision,
    migrate,
)

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("kubernetes", "slack_bolt", "slack_sdk", "flask", "waitress", "alembic", "apscheduler")

PROBE = """
import json, sys
from rollback_bot.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(m.split(".")[0] for m in sys.modules)}))
"""


def _run(tmp_path: Path, *argv: str) -> dict[str, object]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


#: What the read commands need not load on a SQLite file: the database is read with the
#: standard library's sqlite3 (storage.reader), the settings without pydantic
#: (command_env). Each of these costs more start-up than the command's own work.
NOT_ON_READ_PATHS = (*HEAVY, "sqlalchemy", "pydantic", "pydantic_settings", "pydantic_core")


def test_incidents_loads_no_cluster_client_slack_or_alembic(tmp_path: Path) -> None:
    migrate(f"sqlite:///{tmp_path}/cli.db")
    result = _run(tmp_path, "incidents")
    assert result["code"] == 0
    modules = set(result["modules"])  # type: ignore[call-overload]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert "yaml" not in modules  # no catalog is read to list incidents


@pytest.mark.parametrize(
    "argv",
    [
        ("incidents",),
        ("incidents", "--format", "json", "--since", "2026-11-01", "--service", "checkout"),
        ("export", "INC-1", "--format", "json", "--ids", "-o", "{tmp}/pm.json"),
        ("export", "INC-1", "--format", "md", "-o", "{tmp}/pm.md"),
        ("verify-timeline",),
    ],
)
def test_read_commands_load_neither_sqlalchemy_nor_pydantic(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    migrate(url)
    _seed_one_incident(url)
    result = _run(tmp_path, *(a.format(tmp=tmp_path) for a in argv))
    assert result["code"] == 0
    modules = set(result["modules"])  # type: ignore[call-overload]
    assert not modules & set(NOT_ON_READ_PATHS), sorted(modules & set(NOT_ON_READ_PATHS))
    assert "yaml" not in modules


def _seed_one_incident(url: str) -> None:
    from datetime import UTC, datetime

    engine = db.make_engine(url)
    try:
        with db.uow_factory(engine)() as u:
            opened = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
            incident = u.incidents.add(service="checkout", title="5xx", opened_at=opened)
            u.flush()
            u.timeline.append(
                at=opened,
                actor="alertmanager",
                kind="alert.firing",
                summary="HighErrorRate firing",
                incident_id=incident.id,
                service="checkout",
                data={"value": 0.042},
            )
            u.commit()
    finally:
        engine.dispose()


def test_head_read_from_the_version_files_is_alembics() -> None:
    assert head_revision() == _alembic_head()


@pytest.mark.parametrize("target", ["base", "0001_initial"])
def test_current_revision_without_alembic_matches_the_database(tmp_path: Path, target: str) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    migrate(url)
    engine = db.make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
        downgrade(url, target)
        assert current_revision(engine) == (None if target == "base" else target)
    finally:
        engine.dispose()


def test_never_migrated_database_has_no_revision(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()
