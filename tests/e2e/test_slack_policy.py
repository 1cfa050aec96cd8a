"""Policies over signed HTTP: approval expiry, user groups, impersonation, dependents,
and a Slack that rate-limits or fails while a rollback runs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rollback_bot.clock import FakeClock
from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import (
    ALICE,
    BOB,
    CAROL,
    CATALOG,
    CHANNEL,
    FAST_SLACK,
    MakeStack,
    bot_user,
    release,
)
from tests.e2e.test_slack_commands import (
    button,
    filled_modal,
    kinds,
    message_with,
    request_via_command,
    state_of,
    wait_state,
    wait_told,
)

TTL = 600


def _catalog() -> dict[str, Any]:
    catalog = copy.deepcopy(CATALOG)
    checkout = catalog["services"][0]
    checkout["dependents"] = ["search"]
    checkout["impersonate"] = {BOB: {"user": "bob@example.com", "groups": ["sre-oncall"]}}
    checkout["policy"]["approval_ttl_seconds"] = TTL
    return catalog


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def stack(make_stack: MakeStack, migrated_url: str, clock: FakeClock) -> Iterator[LoopbackStack]:
    with make_stack(
        slack_channel_rate=FAST_SLACK,
        catalog=_catalog(),
        database_url=migrated_url,
        ready_delay=0.05,
        clock=clock,
        usergroups={"S0ONCALL": [ALICE], "S0SRE": [CAROL]},
    ) as s:
        yield s


def _approve(stack: LoopbackStack, user: str) -> None:
    message = message_with(stack, action_ids.APPROVE)
    stack.driver.click(
        action_id=action_ids.APPROVE,
        value=button(message, action_ids.APPROVE)["value"],  # type: ignore[index]
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )


def test_an_approval_after_the_window_is_refused_and_frees_the_service(
    stack: LoopbackStack, clock: FakeClock
) -> None:
    release(stack)
    request_via_command(stack, "checkout")
    wait_told(stack, ALICE, "within 10 min")
    wait_state(stack, 1, "requested")
    message = message_with(stack, action_ids.APPROVE)
    assert "Approvals expire at" in json.dumps(message["blocks"])
    clock.advance(TTL + 1)

    _approve(stack, BOB)
    text = wait_told(stack, BOB, "Cannot approve R-1")
    assert "expired" in text and "10 min" in text
    assert state_of(stack, 1) == "aborted"
    events = kinds(stack, 1)
    assert ("rollback.expired", "rollback-bot") in events
    assert ("rollback.refused", BOB) in events
    assert ("rollback.approved", BOB) not in events

    # The expired request no longer holds the service's one slot.
    request_via_command(stack, "checkout")
    wait_state(stack, 2, "requested")


def test_a_usergroup_member_approves_and_the_cluster_sees_the_approver(
    stack: LoopbackStack,
) -> None:
    release(stack)
    audited = len(stack.kube.audit)
    request_via_command(stack, "checkout")
    wait_state(stack, 1, "requested")
    # Carol approves through S0SRE (resolved with usergroups.users.list).
    _approve(stack, CAROL)
    wait_state(stack, 1, "done")
    assert ("rollback.approved", CAROL) in kinds(stack, 1)
    assert stack.slack.calls_for("usergroups.users.list")
    writes = [a for a in stack.kube.audit[audited:] if a["resource"] == "deployments"]
    # No mapping for Carol: the bot's own identity writes.
    assert writes and all(a["user"] == bot_user(stack) for a in writes), writes


def test_impersonation_puts_the_approver_in_the_cluster_audit(stack: LoopbackStack) -> None:
    release(stack)
    audited = len(stack.kube.audit)
    request_via_command(stack, "checkout")
    wait_state(stack, 1, "requested")
    _approve(stack, BOB)
    wait_state(stack, 1, "done")
    writes = [a for a in stack.kube.audit[audited:] if a["resource"] == "deployments"]
    assert writes
    assert all(a["user"] == "bob@example.com" for a in writes), writes
    assert all("sre-oncall" in a["groups"] for a in writes), writes


def test_dependents_get_a_warning_line(stack: LoopbackStack) -> None:
    release(stack)
    seen = len(stack.slack.views)
    stack.driver.command("checkout", user_id=ALICE, channel_id=CHANNEL)
    modal = json.dumps(filled_modal(stack, seen))
    assert "`search`" in modal and "Depends on checkout" in modal
    request_via_command(stack, "checkout")
    message = message_with(stack, action_ids.APPROVE)
    assert "Depends on checkout: `search`" in json.dumps(message["blocks"])


def test_slack_failing_while_posting_progress_loses_nothing(stack: LoopbackStack) -> None:
    release(stack)
    request_via_command(stack, "checkout")
    wait_state(stack, 1, "requested")
    message = message_with(stack, action_ids.APPROVE)
    # Every progress post and update fails for a while; the rollback must not wait.
    stack.slack.inject("chat.postMessage", status=500, count=50)
    stack.slack.inject("chat.update", status=500, count=50)
    stack.driver.click(
        action_id=action_ids.APPROVE,
        value=button(message, action_ids.APPROVE)["value"],  # type: ignore[index]
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )
    wait_state(stack, 1, "done")
    events = [k for k, _ in kinds(stack, 1)]
    for kind in ("rollback.requested", "rollback.approved", "rollback.executing", "rollback.done"):
        assert kind in events, events
    image = stack.deployment("shop", "checkout")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "registry.local/checkout:v1"


def test_rate_limited_posts_are_retried_after_retry_after(stack: LoopbackStack) -> None:
    release(stack)
    stack.slack.inject("chat.postMessage", status=429, retry_after=1, count=1)
    request_via_command(stack, "checkout")
    message_with(stack, action_ids.APPROVE)
    calls = stack.slack.calls_for("chat.postMessage")
    assert calls[0]["status"] == 429
    assert any(c["ok"] for c in calls[1:])
    wait_until(lambda: state_of(stack, 1) == "requested")
