"""A Deployment changed by hand during an incident is noticed; the bot's own writes are not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollback_bot.incidents.watcher import template_digest
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import MakeStack, alertmanager_payload
from tests.e2e.execute_support import (
    NS,
    WAIT,
    FakeAlertmanager,
    incident_open,
    manual_changes,
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
    yield from running_stack(make_stack, migrated_url, alertmanager)


def test_a_change_by_hand_during_an_incident_is_posted_and_recorded(
    stack: LoopbackStack,
) -> None:
    release_instant(stack, configmap=False)
    stack.set_image(NS, "api", "registry.local/api:v3")  # no incident yet: not reported
    assert stack.services is not None and stack.services.watcher is not None
    watcher = stack.services.watcher
    current = template_digest(stack.deployment(NS, "api"))
    wait_until(lambda: watcher.digest_seen(stack.ns(NS), "api") == current, timeout=WAIT)
    assert stack.post_alert("alertmanager", alertmanager_payload("api")).status_code == 200
    wait_until(lambda: incident_open(stack), timeout=WAIT)

    stack.set_image(NS, "api", "registry.local/api:hotfix")  # someone with kubectl
    found = wait_until(lambda: manual_changes(stack), timeout=WAIT)
    assert len(found) == 1
    event = found[0]
    assert event.incident_id is not None and event.actor == "kubernetes"
    assert event.data["images"] == ["registry.local/api:hotfix"]
    assert "changed outside the bot" in event.summary
    assert said(stack, f"deployment {stack.ns(NS)}/api was changed outside the bot")

    # The bot's own rollback during the same incident is not reported as a manual change.
    stack.kube.heal_image("registry.local/api:v2")
    rollback_id = request(stack, "api --to 1")
    wait_state(stack, rollback_id, "done")
    assert len(manual_changes(stack)) == 1
