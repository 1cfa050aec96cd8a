""" "Last stable" reads only the alert times it needs, and still decides as the whole history.

The alert card's "Last stable" revision asks whether an alert fired within each
revision's stable window. The timeline is asked for the first firing per window (one
indexed lookup each, all in one statement) instead of every event of the service; the
choice must be the one the full history gives.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, text

from rollback_bot.catalog import parse_catalog
from rollback_bot.clock import FakeClock
from rollback_bot.kube.revisions import Revision, known_stable
from rollback_bot.rollbacks.targets import Targets
from rollback_bot.storage import db
from rollback_bot.timeline import TimelineKind
from tests.storage.builders import T0

WINDOW = timedelta(minutes=15)


def rev(number: int, minutes: float) -> Revision:
    return Revision(
        number=number,
        replicaset=f"app-{number}",
        images=(f"app:v{number}",),
        created_at=T0 + timedelta(minutes=minutes),
        replicas=2,
        ready=2,
        template={"spec": {"containers": [{"name": "app", "image": f"app:v{number}"}]}},
        configmaps=(),
        annotations={},
    )


HISTORY = [rev(1, 0), rev(2, 60), rev(3, 65), rev(4, 120), rev(5, 180)]
NOW = T0 + timedelta(minutes=240)


def _append(uow: db.UnitOfWorkFactory, rows: list[tuple[str, str, float]]) -> None:
    with uow() as u:
        for service, kind, minutes in rows:
            u.timeline.append(
                at=T0 + timedelta(minutes=minutes),
                actor="alertmanager",
                kind=kind,
                summary="x",
                service=service,
            )
        u.commit()


def test_first_firing_per_window_only_of_that_service_and_kind(
    uow: db.UnitOfWorkFactory,
) -> None:
    _append(
        uow,
        [
            ("checkout", TimelineKind.ALERT_FIRING, 70),
            ("checkout", TimelineKind.ALERT_FIRING, 64),  # written later, fired earlier
            ("checkout", "alert.resolved", 61),  # another kind
            ("search", TimelineKind.ALERT_FIRING, 5),  # another service
            ("checkout", TimelineKind.ALERT_FIRING, 15),  # on the window's edge: inside
        ],
    )
    windows = [(T0, T0 + WINDOW), (T0 + timedelta(minutes=60), T0 + timedelta(minutes=75))]
    with uow(read_only=True) as u:
        found = u.timeline.first_in_windows(
            service="checkout", kind=TimelineKind.ALERT_FIRING, windows=windows
        )
    assert found == [T0 + timedelta(minutes=15), T0 + timedelta(minutes=64)]


def test_every_window_is_asked_in_one_statement(uow: db.UnitOfWorkFactory) -> None:
    # On a database server each statement is a round trip: the alert card asks per revision.
    _append(uow, [("checkout", TimelineKind.ALERT_FIRING, m) for m in (5.0, 62.0, 130.0)])
    windows = [(T0 + timedelta(minutes=m), T0 + timedelta(minutes=m + 15)) for m in (0, 60, 90)]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(uow.engine, "before_cursor_execute", record)
    try:
        with uow(read_only=True) as u:
            found = u.timeline.first_in_windows(
                service="checkout", kind=TimelineKind.ALERT_FIRING, windows=windows
            )
            none = u.timeline.first_in_windows(
                service="checkout", kind=TimelineKind.ALERT_FIRING, windows=[]
            )
    finally:
        event.remove(uow.engine, "before_cursor_execute", record)
    assert found == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=62)] and none == []
    assert len([s for s in statements if "timeline_events" in s]) == 1


def test_choice_is_the_one_the_whole_history_gives(uow: db.UnitOfWorkFactory) -> None:
    # Alerts inside revision 3's window, many outside every window, noise of other kinds.
    firing = [62.0, 66.0, 67.0, 200.0, 230.0] + [100 + n / 10 for n in range(100)]
    _append(uow, [("checkout", TimelineKind.ALERT_FIRING, m) for m in firing])
    _append(uow, [("checkout", "alert.resolved", m) for m in (1.0, 121.0, 181.0)])
    catalog = parse_catalog(
        {
            "services": [
                {
                    "name": "checkout",
                    "namespace": "shop",
                    "deployment": "checkout",
                    "environment": "staging",
                    "channel": "C0SHOP",
                    "match": {"service": "checkout"},
                }
            ]
        }
    )
    service = catalog.services[0]
    targets = Targets(uow=uow, clock=FakeClock(NOW), read_revisions=lambda _s: list(HISTORY))
    choice = targets.choice(service)

    everything = [T0 + timedelta(minutes=m) for m in firing]
    expected = known_stable(HISTORY, alert_times=everything, window=WINDOW, now=NOW)
    assert [k.number for k in reversed(choice.revisions) if k.quiet] == expected == [1, 4, 5]
    assert choice.target is not None and choice.target.number == 4


def test_the_lookup_uses_the_index(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT at FROM timeline_events WHERE service = 'a' "
                    "AND kind = 'alert.firing' AND at >= '2026' AND at <= '2027' "
                    "ORDER BY at LIMIT 1"
                )
            )
        )
    assert "ix_timeline_events_service_kind_at" in plan, plan
