"""The stack for end-to-end tests: every request signed and sent over HTTP.

The ``stack`` fixture (and every module's own, through ``make_stack``) runs on two backends,
the test id says which (``e2e_backend``: ``emulator`` | ``real``): the emulator in
``sandbox/kube`` (``LoopbackStack``), or the real control plane of ``sandbox/realk8s``
(``RealE2EStack``: the bot as ``rollback-bot`` with the shipped Role, every namespace the
catalog names a fresh ``<name>-<hex>`` for the test; ``stack.ns("shop")`` answers it).
Tests talk to the cluster through the stack's calls, which take the logical names
(``deploy``, ``set_image``, ``create``, ``deployment``, ``kube.get``, ``kube.crash_image``...).

Tests that need what only the emulator has (fault injection, latency, its byte-level dump,
a stopped apiserver) carry ``@pytest.mark.emulator_only(reason=...)`` and run on it alone;
so do flows that never reach Kubernetes (``kube_free``: Slack, alerts and HTTP only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from rollback_bot.storage import db
from rollback_bot.storage.models import TimelineEvent
from rollback_bot.timeline import TimelineKind
from sandbox.stack import LoopbackStack, deployment_manifest
from tests.support.backend import BACKENDS, EMULATOR, EMULATOR_ONLY, REAL

KUBE_FREE = "kube_free"
CHANNEL = "C0ALERTS"
# Functional tests need not wait out Slack's one-message-per-second pacing; the outbox's
# unit tests and bench/alert_ingest.py hold the bot to that pacing on their own.
FAST_SLACK = 50.0
ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"

CATALOG: dict[str, Any] = {
    "services": [
        {
            "name": "checkout",
            "namespace": "shop",
            "deployment": "checkout",
            "environment": "production",
            "channel": CHANNEL,
            "match": {"service": "checkout"},
            "strategy": "instant",
            "policy": {
                "requesters": {"users": [ALICE], "usergroups": ["S0ONCALL"]},
                "approvers": {"users": [BOB], "usergroups": ["S0SRE"]},
            },
            "health": {"timeout_seconds": 20, "wait_seconds": 0},
            # v1 ran alert-free until v2 replaced it: evidence enough for these flows
            # (tests/e2e/test_truth.py holds the bot to a real window).
            "stable_window_seconds": 0,
        },
        {
            "name": "search",
            "namespace": "shop",
            "deployment": "search",
            "environment": "staging",
            "channel": "C0SEARCH",
            "match": {"service": "search"},
            "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}},
            "health": {"timeout_seconds": 20, "wait_seconds": 0},
            # v1 ran alert-free until v2 replaced it: evidence enough for these flows
            # (tests/e2e/test_truth.py holds the bot to a real window).
            "stable_window_seconds": 0,
        },
    ]
}


@pytest.fixture(autouse=True)
def timeline_kinds_are_known(database_url: str) -> Iterator[None]:
    """After each flow, every timeline entry it wrote has a ``TimelineKind``."""
    yield
    engine = db.make_engine(database_url)
    try:
        if not inspect(engine).has_table(TimelineEvent.__tablename__):
            return
        with engine.connect() as conn:
            written = set(conn.scalars(select(TimelineEvent.kind).distinct()))
    finally:
        engine.dispose()
    assert written - set(TimelineKind) == set()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test whose stack comes from ``make_stack`` runs on both backends, unless it is
    marked emulator_only, or kube_free (it never reaches Kubernetes)."""
    if "e2e_backend" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker
    emulator_only = marked(EMULATOR_ONLY) is not None or marked(KUBE_FREE) is not None
    params = [EMULATOR] if emulator_only else list(BACKENDS)
    metafunc.parametrize("e2e_backend", params, indirect=True, ids=params)


@pytest.fixture
def e2e_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


MakeStack = Callable[..., contextlib.AbstractContextManager[LoopbackStack]]


@pytest.fixture
def make_stack(e2e_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> MakeStack:
    """``make_stack(catalog=..., database_url=..., **LoopbackStack options)``: a stack on
    this test's backend, to use in ``with``."""

    def make(**kw: Any) -> contextlib.AbstractContextManager[LoopbackStack]:
        if e2e_backend == REAL:
            from tests.support.realstack import RealE2EStack

            plane = request.getfixturevalue("real_control_plane")
            return RealE2EStack(plane=plane, work_dir=tmp_path, **kw)
        return LoopbackStack(**kw)

    return make


@pytest.fixture
def stack(migrated_url: str, make_stack: MakeStack) -> Iterator[LoopbackStack]:
    with make_stack(
        slack_channel_rate=FAST_SLACK, catalog=CATALOG, database_url=migrated_url, ready_delay=0.05
    ) as s:
        yield s


def bot_user(stack: LoopbackStack) -> str:
    """Who the bot is to the cluster: the emulator's default user, or its own token user."""
    return str(getattr(stack.kube, "bot_user", "sandbox-admin"))


def release(stack: LoopbackStack, name: str = "checkout", *, bad: bool = True) -> None:
    """Deploy v1 (good) then v2; v2's image crashes when ``bad``."""
    stack.deploy("shop", deployment_manifest(name, f"registry.local/{name}:v1"))
    stack.wait_available("shop", name)
    if bad:
        stack.kube.crash_image(f"registry.local/{name}:v2")
    stack.set_image("shop", name, f"registry.local/{name}:v2")

    def seen() -> bool:
        # The controller has taken v2 in (its ReplicaSet made, the revision recorded), as it
        # has long before anyone asks for a rollback; on a loaded real control plane a
        # request made at once could otherwise be planned against revision 1 alone.
        deployment = stack.deployment("shop", name)
        observed = (deployment.get("status") or {}).get("observedGeneration", 0)
        return bool(observed >= deployment["metadata"].get("generation", 1))

    stack.kube.wait_for(seen, timeout=10)


def alertmanager_payload(service: str = "checkout", *, status: str = "firing") -> dict[str, Any]:
    labels = {"alertname": "HighErrorRate", "service": service, "severity": "critical"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rollback-bot",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "5xx above 5%"},
        "externalURL": "http://alertmanager.local",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {
                    "summary": "5xx above 5%",
                    "runbook_url": "https://runbooks/checkout",
                },
                "startsAt": "2026-11-25T09:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T09:10:00Z",
                "generatorURL": "http://prometheus.local/graph",
                "fingerprint": f"fp-{service}",
            }
        ],
    }
