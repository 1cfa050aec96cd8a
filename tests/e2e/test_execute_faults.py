"""Trouble mid-rollback: conflicts and 5xx retried or paused, a failing gate pausing and
asking, "go to 0% now", and a rollback that never turns healthy failing loudly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import MakeStack
from tests.e2e.execute_support import (
    NS,
    WAIT,
    FakeAlertmanager,
    click,
    events,
    image,
    landed,
    release_gradual,
    release_instant,
    replicas,
    request,
    running_alertmanager,
    running_stack,
    said,
    settled,
    wait_state,
    writes,
)


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    yield from running_alertmanager()


@pytest.fixture
def stack(
    make_stack: MakeStack, migrated_url: str, alertmanager: FakeAlertmanager
) -> Iterator[LoopbackStack]:
    yield from running_stack(
        make_stack, migrated_url, alertmanager, step_seconds=1, timeout_seconds=6
    )


@pytest.mark.emulator_only(reason="injects 409s and 503s: only the emulator can")
def test_conflicts_and_server_errors_on_an_instant_rollback_are_retried(
    stack: LoopbackStack,
) -> None:
    release_instant(stack, configmap=False)
    stack.kube.inject_faults(
        resource="deployments", namespace=NS, name="api", conflicts=2, errors=2, status=503
    )
    before = len(writes(stack, "api"))
    rollback_id = request(stack, "api")
    wait_state(stack, rollback_id, "done")
    assert image(stack, "api") == "registry.local/api:v1"
    assert len(writes(stack, "api")) == before + 1  # applied once, not replayed


@pytest.mark.emulator_only(reason="injects 409s and 503s: only the emulator can")
def test_conflicts_mid_gradual_rollback_are_retried(stack: LoopbackStack) -> None:
    release_gradual(stack, "shopfront")
    # Step 1 (50%) changes nothing here; the first write, at 20%, meets the conflicts.
    stack.kube.inject_faults(
        resource="deployments", namespace=NS, name="shopfront-canary", conflicts=3
    )
    rollback_id = request(stack, "shopfront")
    wait_state(stack, rollback_id, "done")
    assert replicas(stack, "shopfront-canary") == 0
    assert len(writes(stack, "shopfront-canary", dry_run=False)) == 3


@pytest.mark.emulator_only(reason="injects 409s and 503s: only the emulator can")
def test_server_errors_past_the_budget_pause_a_half_done_rollback(
    stack: LoopbackStack,
) -> None:
    release_gradual(stack, "shopfront")
    rollback_id = request(stack, "shopfront")
    wait_until(lambda: replicas(stack, "shopfront-canary") == 2, timeout=WAIT)
    stack.kube.inject_faults(
        resource="deployments", namespace=NS, name="shopfront-canary", errors=10_000, status=503
    )
    row = wait_state(stack, rollback_id, "paused")
    assert row.step == 2  # 50% and 20% in place, 5% not
    assert replicas(stack, "shopfront-canary") == 2
    paused = [e for e in events(stack, rollback_id) if e.kind == "rollback.paused"]
    assert paused and "503" in paused[-1].summary and "half-way" in paused[-1].summary
    assert said(stack, "paused half-way")

    stack.kube.inject_faults(resource="deployments", namespace=NS, name="shopfront-canary")
    click(stack, action_ids.RESUME)
    wait_state(stack, rollback_id, "done")
    assert replicas(stack, "shopfront-canary") == 0
    assert len(writes(stack, "shopfront-canary", dry_run=False)) == 3


def test_a_failing_gate_pauses_and_go_to_zero_finishes(
    stack: LoopbackStack, alertmanager: FakeAlertmanager
) -> None:
    release_gradual(stack, "shopfront")
    alertmanager.firing["shopfront"] = ["HighErrorRate"]
    rollback_id = request(stack, "shopfront")
    row = wait_state(stack, rollback_id, "paused")
    assert row.step == 1
    failed = [e for e in events(stack, rollback_id) if e.kind == "health.failed"]
    assert failed and "HighErrorRate" in failed[0].summary
    assert said(stack, "health gate failed before step 2")

    alertmanager.firing.clear()
    click(stack, action_ids.SKIP_TO_END)
    wait_state(stack, rollback_id, "done")
    assert replicas(stack, "shopfront-canary") == 0
    assert len(landed(stack, "shopfront-canary")) == 1  # 20% and 5% skipped
    kinds = [e.kind for e in events(stack, rollback_id)]
    assert "rollback.skipped" in kinds and kinds[-1] == "rollback.done"


def test_a_gate_failure_then_resume_continues_step_by_step(
    stack: LoopbackStack, alertmanager: FakeAlertmanager
) -> None:
    release_gradual(stack, "shopfront")
    alertmanager.firing["shopfront"] = ["HighLatency"]
    rollback_id = request(stack, "shopfront")
    wait_state(stack, rollback_id, "paused")
    alertmanager.firing.clear()
    click(stack, action_ids.RESUME)
    wait_state(stack, rollback_id, "done")
    assert len(landed(stack, "shopfront-canary")) == 3


def test_a_rollback_that_never_turns_healthy_fails_loudly(stack: LoopbackStack) -> None:
    stack.deploy(NS, deployment_manifest("api", "registry.local/api:v1"))
    settled(stack, "api")
    stack.set_image(NS, "api", "registry.local/api:v2")
    settled(stack, "api")  # v2 fully rolled out: no v1 pod is left running
    stack.kube.crash_image("registry.local/api:v1")  # and the target turns out broken
    rollback_id = request(stack, "api")
    row = wait_state(stack, rollback_id, "failed")
    assert row.error and "not healthy within 6 s" in row.error
    assert "rollout" in row.error  # what was seen
    assert said(stack, "not healthy within 6 s")
    assert stack.services is not None and row.incident_id is not None
    with stack.services.uow(read_only=True) as uow:
        incident = uow.incidents.get(id=row.incident_id)
    assert incident is not None and incident.mitigated_at is None
