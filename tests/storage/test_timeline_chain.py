"""The timeline's hash chain: every entry sealed onto its incident's chain, edits found.

The tampering tests do what an intruder with database access would: lift the append-only
trigger with raw SQL and rewrite or delete a row. They run on SQLite and, with
``ROLLBACK_BOT_TEST_DATABASE_URL`` set, on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

from rollback_bot.cli import main
from rollback_bot.storage import db
from rollback_bot.storage.chain import hash_of, verify
from rollback_bot.storage.migrator import MIGRATIONS_DIR
from rollback_bot.storage.models import TimelineEvent
from tests.storage.builders import T0, at
from tests.storage.concurrency import race


def _incident(uow: db.UnitOfWorkFactory, service: str = "checkout") -> int:
    with uow() as u:
        incident = u.incidents.add(service=service, title="5xx", opened_at=T0)
        u.commit()
    return incident.id


def _append(uow: db.UnitOfWorkFactory, incident_id: int | None, n: int, **extra: object) -> None:
    with uow() as u:
        for i in range(n):
            u.timeline.append(
                at=at(i),
                actor="U0ALICE",
                kind="note",
                summary=f"entry {i}",
                incident_id=incident_id,
                data={"i": i, "ratio": 2.0, "nested": {"b": [1, 2.5], "a": None}},
                **extra,  # type: ignore[arg-type]
            )
        u.commit()


def _rows(engine: Engine, incident_id: int) -> list[TimelineEvent]:
    with db.uow_factory(engine)(read_only=True) as u:
        # Chain order is id order (the lists are by time, and these times repeat).
        return sorted(u.timeline.list_for_incident(incident_id=incident_id), key=lambda e: e.id)


def _bypass_append_only(engine: Engine, statement: str, **params: object) -> None:
    """Run ``statement`` with the append-only trigger lifted, as an intruder would."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE timeline_events DISABLE TRIGGER USER"))
            conn.execute(text(statement), params)
            conn.execute(text("ALTER TABLE timeline_events ENABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER timeline_events_no_update"))
            conn.execute(text("DROP TRIGGER timeline_events_no_delete"))
            conn.execute(text(statement), params)
            for verb in ("update", "delete"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER timeline_events_no_{verb} BEFORE {verb.upper()} "
                        "ON timeline_events BEGIN "
                        "SELECT RAISE(ABORT, 'timeline_events is append-only'); END"
                    )
                )


def test_each_entry_seals_the_one_before_on_its_incident(
    uow: db.UnitOfWorkFactory, engine: Engine
) -> None:
    first, second = _incident(uow), _incident(uow, "payments")
    _append(uow, first, 3)
    _append(uow, second, 2)
    _append(uow, first, 2)  # a later transaction continues the same chain
    _append(uow, None, 2, service="checkout")  # no incident: the service's chain
    rows = _rows(engine, first)
    assert len(rows) == 5
    assert rows[0].prev_hash is None
    for before, entry in itertools.pairwise(rows):
        assert entry.prev_hash == before.hash
        assert entry.hash == hash_of(entry, before.hash)
    other = _rows(engine, second)
    assert other[0].prev_hash is None  # one chain per incident
    result = verify(engine)
    assert result.ok and result.entries == 9 and result.chains == 3
    assert verify(engine, incident_id=first).entries == 5


def test_an_entry_edited_behind_the_bots_back_is_named(
    uow: db.UnitOfWorkFactory, engine: Engine
) -> None:
    incident = _incident(uow)
    _append(uow, incident, 4)
    victim = _rows(engine, incident)[2]
    # The triggers still refuse an ordinary edit...
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE timeline_events SET summary = 'x' WHERE id = :id"), {"id": 1})
    # ...so the intruder lifts them.
    _bypass_append_only(
        engine,
        "UPDATE timeline_events SET summary = 'nothing happened' WHERE id = :id",
        id=victim.id,
    )
    result = verify(engine, incident_id=incident)
    assert not result.ok
    [broken] = result.broken
    assert (broken.entry_id, broken.what, broken.stored) == (victim.id, "content", victim.hash)
    assert broken.expected != victim.hash
    assert f"INC-{incident}" in broken.describe()


def test_a_deleted_entry_breaks_the_next_link(uow: db.UnitOfWorkFactory, engine: Engine) -> None:
    incident = _incident(uow)
    _append(uow, incident, 4)
    rows = _rows(engine, incident)
    _bypass_append_only(engine, "DELETE FROM timeline_events WHERE id = :id", id=rows[1].id)
    [broken] = verify(engine).broken
    assert (broken.entry_id, broken.what) == (rows[2].id, "link")
    assert (broken.expected, broken.stored) == (rows[0].hash, rows[1].hash)


def test_verify_timeline_command(
    uow: db.UnitOfWorkFactory,
    engine: Engine,
    migrated_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_url)
    incident = _incident(uow)
    _append(uow, incident, 3)
    _append(uow, None, 1, service="checkout")
    assert main(["verify-timeline"]) == 0
    assert "OK: the timeline: 4 entries on 2 chain(s)" in capsys.readouterr().out
    assert main(["verify-timeline", f"INC-{incident}"]) == 0
    assert f"OK: INC-{incident}: 3 entries on 1 chain(s)" in capsys.readouterr().out

    victim = _rows(engine, incident)[1]
    _bypass_append_only(
        engine, "UPDATE timeline_events SET actor = 'U0MALLORY' WHERE id = :id", id=victim.id
    )
    assert main(["verify-timeline", str(incident)]) == 1
    out = capsys.readouterr().out
    assert f"INC-{incident}: entry {victim.id} is broken" in out
    assert f"stored hash {victim.hash}" in out
    expected = hash_of(_rows(engine, incident)[1], victim.prev_hash)
    assert f"expected hash {expected}" in out

    assert main(["verify-timeline", "INC-999"]) == 1
    assert "INC-999 has no timeline entries" in capsys.readouterr().err
    assert main(["verify-timeline", "nonsense"]) == 2


def test_concurrent_writers_do_not_fork_the_chain(
    uow: db.UnitOfWorkFactory, engine: Engine
) -> None:
    incident = _incident(uow)
    _append(uow, incident, 1)

    def write(i: int) -> None:
        for round_ in range(3):
            with uow() as u:
                u.timeline.append(
                    at=at(i),
                    actor=f"U{i}",
                    kind="note",
                    summary=f"{i}/{round_}",
                    incident_id=incident,
                )
                u.timeline.append(
                    at=at(i), actor=f"U{i}", kind="note", summary="service", service="checkout"
                )
                u.commit()

    results = race(write, workers=6)
    assert [r for r in results if r is not None] == []
    rows = _rows(engine, incident)
    assert len(rows) == 1 + 6 * 3
    # A fork would show as two entries naming the same predecessor.
    assert max(Counter(r.prev_hash for r in rows).values()) == 1
    result = verify(engine)
    assert result.ok and result.entries == 1 + 6 * 3 * 2 and result.chains == 2


def test_a_rolled_back_savepoint_leaves_the_chain_whole(
    uow: db.UnitOfWorkFactory, engine: Engine
) -> None:
    incident = _incident(uow)
    with uow() as u:
        u.timeline.append(at=T0, actor="a", kind="note", summary="kept", incident_id=incident)
        with u.session.begin_nested() as savepoint:
            u.timeline.append(at=T0, actor="a", kind="note", summary="gone", incident_id=incident)
            u.session.flush()
            savepoint.rollback()
        u.timeline.append(at=T0, actor="a", kind="note", summary="after", incident_id=incident)
        u.commit()
    assert "gone" not in [r.summary for r in _rows(engine, incident)]
    assert verify(engine).ok


def test_migration_seals_existing_rows_and_keeps_the_guard(database_url: str) -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    before = script.get_revision("0004_timeline_chain").down_revision
    assert isinstance(before, str)
    db.migrate(database_url, before)
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO incidents (service, title, state, opened_at) "
                    "VALUES ('checkout', 't', 'resolved', :at)"
                ),
                {"at": T0.replace(tzinfo=None) if engine.dialect.name == "sqlite" else T0},
            )
            for i, incident in enumerate([1, None, 1, None, 1]):
                conn.execute(
                    text(
                        "INSERT INTO timeline_events "
                        "(incident_id, service, at, actor, kind, summary, data) "
                        "VALUES (:incident, 'checkout', :at, 'bot', 'k', :summary, :data)"
                    ),
                    {
                        "incident": incident,
                        "at": at(i).replace(tzinfo=None)
                        if engine.dialect.name == "sqlite"
                        else at(i),
                        "summary": f"old {i}",
                        "data": '{"n": 1.0, "z": [true]}',
                    },
                )
        db.migrate(database_url)
        result = verify(engine)
        assert result.ok and result.entries == 5 and result.chains == 2
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE timeline_events SET summary = 'rewritten'"))
        # New entries continue the sealed chain.
        _append(db.uow_factory(engine), 1, 1)
        assert verify(engine).ok
    finally:
        engine.dispose()


def test_any_writer_seals_entries_without_importing_the_chain_itself(migrated_url: str) -> None:
    """``serve`` never imports ``storage.chain`` by name: writing the timeline must seal."""
    import subprocess
    import sys

    program = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from rollback_bot.storage import db\n"
        "uow = db.uow_factory(db.make_engine(sys.argv[1]))\n"
        "with uow() as u:\n"
        "    e = u.timeline.append(at=datetime.now(UTC), actor='a', kind='k', summary='s')\n"
        "    u.commit()\n"
        "print(e.hash or 'UNSEALED')\n"
        "print('rollback_bot.storage.chain' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program, migrated_url],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert len(out[0]) == 64 and out[1] == "True"


# -- the fast canonical form of stored values is the canonical form -------------------------

_AWKWARD_DATA: list[object] = [
    None,
    {},
    [],
    {"b": 1, "a": 2.0, "c": [1.0, 2.5, {"z": None, "y": True, "x": False}]},
    {"big": 1e20, "neg": -0.0, "tiny": 1e-7, "int": 12345678901234567890, "inf": 1.5e300},
    {"ü": 'naïve — “quotes” "esc" \\ back\nline\ttab\u2028 \x01 😀', "k": "v"},
    {"nested": {"deep": {"deeper": [[], {}, [1, [2, [3.0]]]]}}},
]


@pytest.mark.parametrize("data", _AWKWARD_DATA)
@pytest.mark.parametrize(
    ("incident_id", "rollback_id", "service", "prev"),
    [(7, 3, "checkout", "ab" * 32), (None, None, None, None), (1, None, "ünïcode svc", None)],
)
def test_the_hash_of_stored_values_is_the_entry_hash(
    data: object,
    incident_id: int | None,
    rollback_id: int | None,
    service: str | None,
    prev: str | None,
) -> None:
    """``verify-timeline`` hashes what the driver gives (SQLite's time text, ``data`` as
    JSON text as SQLAlchemy stored it, or decoded on PostgreSQL): the same bytes as
    ``entry_hash`` of the values, so chains already stored keep verifying."""
    import json
    from datetime import UTC, datetime, timedelta, timezone

    from rollback_bot.storage.chain_check import entry_hash, stored_hash

    when = datetime(2026, 11, 25, 9, 0, 1, 2345, tzinfo=UTC)
    want = entry_hash(
        prev_hash=prev,
        kind="kube.changed",
        actor="U0ALICE “A”",
        at=when,
        incident_id=incident_id,
        rollback_id=rollback_id,
        service=service,
        summary='patched "checkout"\n\\ done ✓',
        data=data,  # type: ignore[arg-type]
    )
    stored_times = [
        "2026-11-25 09:00:01.002345",  # SQLite, as SQLAlchemy writes it
        "2026-11-25T09:00:01.002345",  # other spellings take the general path
        "2026-11-25 10:00:01.002345+01:00",
        when,  # PostgreSQL
        when.astimezone(timezone(timedelta(hours=-5))),
    ]
    stored_data = [json.dumps(data), json.dumps(data, ensure_ascii=False, indent=1), data]
    for stored_at in stored_times:
        for stored in stored_data:
            got = stored_hash(
                prev_hash=prev,
                kind="kube.changed",
                actor="U0ALICE “A”",
                at=stored_at,
                incident_id=incident_id,
                rollback_id=rollback_id,
                service=service,
                summary='patched "checkout"\n\\ done ✓',
                data=stored,
            )
            assert got == want, (stored_at, stored)
