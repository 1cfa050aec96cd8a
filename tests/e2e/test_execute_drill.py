"""Drills: the whole path with ``dryRun=All`` on every write, and the cluster byte-identical."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.stack import LoopbackStack
from tests.e2e.conftest import MakeStack
from tests.e2e.execute_support import (
    FakeAlertmanager,
    events,
    quiet,
    release_bluegreen,
    release_gradual,
    release_instant,
    request,
    running_alertmanager,
    running_stack,
    said,
    wait_state,
)


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    yield from running_alertmanager()


@pytest.fixture
def stack(
    make_stack: MakeStack, migrated_url: str, alertmanager: FakeAlertmanager
) -> Iterator[LoopbackStack]:
    yield from running_stack(make_stack, migrated_url, alertmanager, step_seconds=0)


def test_drills_of_every_strategy_change_nothing(stack: LoopbackStack) -> None:
    release_instant(stack)
    release_bluegreen(stack)
    release_gradual(stack, "shopfront")
    release_gradual(stack, "cart", ingress=True)
    before = quiet(stack)
    writes_before = len(stack.kube.audit)

    # One drill per service, all at once: each service has its own rollback.
    ids = {service: request(stack, f"drill {service}") for service in SERVICES}
    for service, rollback_id in ids.items():
        row = wait_state(stack, rollback_id, "done")
        assert row.drill and row.incident_id is None, service

    assert stack.kube.dump() == before
    made = stack.kube.audit[writes_before:]
    assert {entry["name"] for entry in made} >= {"api", "web", "shopfront-canary", "cart-canary"}
    assert all(entry["dryRun"] for entry in made), made
    for service, rollback_id in ids.items():
        timeline = events(stack, rollback_id)
        assert timeline[0].summary.startswith("DRILL:"), service
        changes = [e for e in timeline if e.kind == "kube.changed"]
        assert changes and all(e.summary.startswith("dry run:") for e in changes), service
        assert "nothing was changed" in timeline[-1].summary, service
    assert said(stack, "dry run:")


SERVICES = ("api", "web", "shopfront", "cart")
