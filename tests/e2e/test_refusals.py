"""Every refusal gets a clear answer and leaves the timeline and the cluster as they were.

The only trace a refusal may leave is a ``rollback.refused`` entry naming the
actor; no state changes, no Kubernetes writes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from rollback_bot.slack.ui import action_ids
from sandbox.slack import sign_request
from sandbox.slack.workspace import DEFAULT_USERS
from sandbox.stack import SIGNING_SECRET, LoopbackStack
from tests.e2e.conftest import ALICE, BOB, CATALOG, CHANNEL, FAST_SLACK, MALLORY, MakeStack, release
from tests.e2e.test_slack_commands import (
    button,
    kinds,
    message_with,
    request_via_command,
    state_of,
    wait_told,
)


@pytest.fixture
def stack(make_stack: MakeStack, migrated_url: str) -> Iterator[LoopbackStack]:
    """The usual stack, with Mallory in the workspace: a member who is in no policy."""
    users = {**DEFAULT_USERS, MALLORY: {"name": "mallory", "real_name": "Mallory"}}
    with make_stack(
        slack_channel_rate=FAST_SLACK,
        catalog=CATALOG,
        database_url=migrated_url,
        ready_delay=0.05,
        users=users,
    ) as s:
        yield s


def _settled_release(stack: LoopbackStack) -> None:
    """v1 then v2, rolled out: from here the dump only changes if something writes."""
    release(stack, bad=False)
    stack.wait_available("shop", "checkout")


def _form(stack: LoopbackStack, text: str) -> bytes:
    payload = stack.driver.command_payload(text, user_id=ALICE, channel_id=CHANNEL)
    return urlencode(payload).encode()


def test_forged_signature_and_stale_timestamp_are_refused(stack: LoopbackStack) -> None:
    _settled_release(stack)
    before = stack.kube.dump()
    body = _form(stack, "checkout")
    forged = {"Content-Type": "application/x-www-form-urlencoded"}
    forged.update(sign_request("not-the-secret", body))
    assert stack.driver.raw(body, forged).status_code == 401

    stale = {"Content-Type": "application/x-www-form-urlencoded"}
    stale.update(sign_request(SIGNING_SECRET, body, timestamp=int(time.time()) - 6 * 60))
    assert stack.driver.raw(body, stale).status_code == 401

    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert stack.driver.raw(body, unsigned).status_code == 401
    assert stack.slack.calls_for("views.open") == []
    assert kinds(stack) == [] and stack.kube.dump() == before


def test_a_forged_request_is_logged_in_one_line_without_its_body(
    stack: LoopbackStack, caplog: pytest.LogCaptureFixture
) -> None:
    # The body carries response_url and trigger_id, which let anyone holding them post
    # as the app for a while: a rejection must not write them to the log.
    payload = stack.driver.command_payload("checkout", user_id=ALICE, channel_id=CHANNEL)
    body = urlencode(payload).encode()
    forged = {"Content-Type": "application/x-www-form-urlencoded"}
    forged.update(sign_request("not-the-secret", body))
    caplog.set_level(logging.INFO, logger="slack_bolt.RequestVerification")

    assert stack.driver.raw(body, forged).status_code == 401

    rejections = [r for r in caplog.records if r.name == "slack_bolt.RequestVerification"]
    assert [r.getMessage() for r in rejections] == [
        "rejected a Slack request: invalid signature or stale timestamp"
    ]
    logged = caplog.text
    for secret in (payload["response_url"], payload["trigger_id"], forged["X-Slack-Signature"]):
        assert secret not in logged


def test_alert_for_an_unknown_service_is_refused(stack: LoopbackStack) -> None:
    alert = {"service": "payments", "name": "HighErrorRate", "severity": "critical"}
    resp = stack.post_alert("generic", {**alert, "status": "firing"})
    assert resp.status_code == 422
    assert "payments" in resp.json()["error"] and "checkout" in resp.json()["error"]
    assert kinds(stack) == []


def test_a_request_by_someone_not_allowed_is_refused_and_recorded(stack: LoopbackStack) -> None:
    _settled_release(stack)
    before = stack.kube.dump()
    resp = stack.driver.command("checkout", user_id=MALLORY, channel_id=CHANNEL)
    text = wait_told(stack, MALLORY, "Refused", resp)
    assert "checkout/production" in text and "requesters" in text
    assert stack.slack.calls_for("views.open") == []  # no modal for a refusal
    assert kinds(stack) == [("rollback.refused", MALLORY)]
    assert stack.kube.dump() == before


def _pending(stack: LoopbackStack) -> dict:
    _settled_release(stack)
    request_via_command(stack, "checkout")
    return message_with(stack, action_ids.APPROVE)


def _click_approve(stack: LoopbackStack, message: dict, user: str) -> None:
    stack.driver.click(
        action_id=action_ids.APPROVE,
        value=button(message, action_ids.APPROVE)["value"],  # type: ignore[index]
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )


def test_an_unauthorized_click_is_refused_with_the_reason(stack: LoopbackStack) -> None:
    message = _pending(stack)
    before, events = stack.kube.dump(), kinds(stack)
    _click_approve(stack, message, MALLORY)
    text = wait_told(stack, MALLORY, "Cannot approve R-1", None)
    assert "not an approver for checkout/production" in text and "S0SRE" in text
    assert state_of(stack, 1) == "requested"
    assert kinds(stack) == [*events, ("rollback.refused", MALLORY)]
    assert stack.kube.dump() == before


def test_self_approval_is_refused(stack: LoopbackStack) -> None:
    message = _pending(stack)
    before, events = stack.kube.dump(), kinds(stack)
    _click_approve(stack, message, ALICE)
    text = wait_told(stack, ALICE, "Cannot approve R-1", None)
    assert "someone else must approve" in text
    resp = stack.driver.command("approve R-1", user_id=ALICE, channel_id=CHANNEL)
    wait_told(stack, ALICE, "someone else must approve", resp, times=2)
    assert state_of(stack, 1) == "requested"
    assert kinds(stack) == [*events, ("rollback.refused", ALICE), ("rollback.refused", ALICE)]
    assert stack.kube.dump() == before


def test_a_second_request_is_refused_with_a_link_to_the_active_one(stack: LoopbackStack) -> None:
    _pending(stack)
    events = kinds(stack)
    request_via_command(stack, "checkout", user=BOB)
    text = wait_told(stack, BOB, "already has an active rollback", None)
    assert "R-1" in text and "/rollback status R-1" in text
    assert state_of(stack, 2) is None
    assert kinds(stack) == [*events, ("rollback.refused", BOB)]


def test_a_denial_needs_a_reason(stack: LoopbackStack) -> None:
    _pending(stack)
    events = kinds(stack)
    resp = stack.driver.command("deny R-1", user_id=BOB, channel_id=CHANNEL)
    assert "reason" in wait_told(stack, BOB, "reason", resp)
    assert state_of(stack, 1) == "requested" and kinds(stack) == events
    resp = stack.driver.command("deny R-1 wrong revision", user_id=BOB, channel_id=CHANNEL)
    wait_told(stack, BOB, "denied", resp)
    assert state_of(stack, 1) == "denied"
    denial = [e for e in kinds(stack, 1) if e[0] == "rollback.denied"]
    assert denial == [("rollback.denied", BOB)]
    assert json.dumps(kinds(stack)).count("refused") == 0
