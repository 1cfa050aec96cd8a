"""Buttons and modals over signed HTTP: deny with a reason, confirmations, exactly once.

Slack retries a delivery it thinks timed out and people double-click; either
way exactly one action may happen. Duplicates are sent truly at once, from
threads, with byte-identical signed bodies where Slack would resend.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlencode

import requests

from rollback_bot.slack.ui import action_ids
from sandbox.slack import sign_request
from sandbox.stack import SIGNING_SECRET, LoopbackStack, wait_until
from tests.e2e.conftest import ALICE, BOB, CHANNEL, release
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


def _send_at_once(stack: LoopbackStack, payload: dict[str, Any], *, copies: int = 2) -> list[int]:
    """POST the same signed interactivity body ``copies`` times concurrently."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    url = f"{stack.url}/slack/events"
    barrier = threading.Barrier(copies)
    statuses: list[int] = []

    def send(attempt: int) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers.update(sign_request(SIGNING_SECRET, body))
        if attempt:
            headers["X-Slack-Retry-Num"] = str(attempt)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        barrier.wait(timeout=10)
        statuses.append(requests.post(url, data=body, headers=headers, timeout=10).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return statuses


def _requested(stack: LoopbackStack) -> dict[str, Any]:
    """Alice requests a rollback of checkout (production); the message asking approval."""
    release(stack)
    assert request_via_command(stack, "checkout").status_code == 200
    return message_with(stack, action_ids.APPROVE)


def _click_payload(stack: LoopbackStack, message: dict[str, Any], action_id: str, user: str) -> Any:
    found = button(message, action_id)
    assert found is not None, action_id
    return stack.driver.click_payload(
        action_id=action_id,
        value=found["value"],
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )


def _count(stack: LoopbackStack, kind: str) -> int:
    return sum(1 for k, _ in kinds(stack) if k == kind)


def test_rollback_message_buttons_and_destructive_confirmation(stack: LoopbackStack) -> None:
    message = _requested(stack)
    assert button(message, action_ids.APPROVE) and button(message, action_ids.DENY)
    abort = button(message, action_ids.ABORT)
    assert abort is not None and "confirm" in abort  # destructive: asks first
    text = message["text"] + json.dumps(message["blocks"])
    assert "registry.local/checkout:v1" in text and "registry.local/checkout:v2" in text
    # The approval window is stated to the requester (an answer that may land after the
    # message: approvals go out first).
    assert "within 30 min" in wait_told(stack, ALICE, "within 30 min")


def test_deny_button_opens_a_modal_and_requires_a_reason(stack: LoopbackStack) -> None:
    message = _requested(stack)
    seen = len(stack.slack.views)
    resp = stack.driver.click(
        action_id=action_ids.DENY,
        value=button(message, action_ids.DENY)["value"],  # type: ignore[index]
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )
    assert resp.status_code == 200
    opened = wait_until(lambda: [v for v in stack.slack.views[seen:] if v["op"] == "open"])
    modal = opened[0]["view"]
    assert modal["callback_id"] == action_ids.DENY_MODAL

    empty = stack.driver.submit_view(
        callback_id=action_ids.DENY_MODAL,
        user_id=BOB,
        private_metadata=modal["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "  "}},
    )
    assert empty.status_code == 200
    assert empty.json()["response_action"] == "errors"
    assert action_ids.REASON_BLOCK in empty.json()["errors"]
    assert state_of(stack, 1) == "requested"

    stack.driver.submit_view(
        callback_id=action_ids.DENY_MODAL,
        user_id=BOB,
        private_metadata=modal["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "wrong revision, use 40"}},
    )
    wait_state(stack, 1, "denied")
    assert ("rollback.denied", BOB) in kinds(stack, 1)
    # The channel sees one line when it ends; the message is updated in place.
    summary = wait_until(
        lambda: [m for m in stack.slack.thread(CHANNEL, message["ts"]) if m.get("broadcast")]
    )
    assert len(summary) == 1 and "denied" in summary[0]["text"]
    updated = wait_until(
        lambda: (m := stack.slack.message(CHANNEL, message["ts"])) and "denied" in m["text"] and m
    )
    assert button(updated, action_ids.APPROVE) is None
    assert "wrong revision, use 40" in json.dumps(updated["blocks"])
    assert [c for c in stack.slack.calls_for("chat.update") if c["args"]["ts"] == message["ts"]]
    posted = [c["args"].get("text", "") for c in stack.slack.calls_for("chat.postMessage")]
    assert sum(1 for t in posted if t.startswith("Rollback R-1")) == 1  # never reposted


def test_same_submission_delivered_twice_at_once_makes_one_rollback(
    stack: LoopbackStack,
) -> None:
    release(stack)
    seen = len(stack.slack.views)
    stack.driver.command("checkout", user_id=ALICE, channel_id=CHANNEL)
    view = filled_modal(stack, seen)
    payload = stack.driver.view_submission_payload(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=view["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "5xx"}},
    )
    assert _send_at_once(stack, payload) == [200, 200]
    wait_state(stack, 1, "requested")
    assert stack.services is not None
    stack.services.outbox.flush(timeout=10)
    assert state_of(stack, 2) is None
    assert _count(stack, "rollback.requested") == 1
    assert _count(stack, "rollback.refused") == 0
    # The message is queued after the state is committed: wait for it, then count again.
    wait_until(lambda: [m for m in stack.slack.messages(CHANNEL) if button(m, action_ids.APPROVE)])
    stack.services.outbox.flush(timeout=10)
    assert len([m for m in stack.slack.messages(CHANNEL) if button(m, action_ids.APPROVE)]) == 1


def test_same_approve_click_delivered_twice_at_once_approves_once(stack: LoopbackStack) -> None:
    message = _requested(stack)
    payload = _click_payload(stack, message, action_ids.APPROVE, BOB)
    assert _send_at_once(stack, payload) == [200, 200]
    wait_state(stack, 1, "done")
    assert kinds(stack, 1).count(("rollback.approved", BOB)) == 1
    assert _count(stack, "rollback.refused") == 0
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        assert len(uow.approvals.list_for(rollback_id=1)) == 1


def test_double_click_by_the_same_person_acts_once(stack: LoopbackStack) -> None:
    message = _requested(stack)
    # Two distinct clicks (two trigger_ids), at the same moment.
    first = _click_payload(stack, message, action_ids.APPROVE, BOB)
    second = _click_payload(stack, message, action_ids.APPROVE, BOB)
    assert first["trigger_id"] != second["trigger_id"]
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda p=p: statuses.extend(_send_at_once(stack, p, copies=1)))
        for p in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert statuses == [200, 200]
    wait_state(stack, 1, "done")
    assert kinds(stack, 1).count(("rollback.approved", BOB)) == 1
    assert _count(stack, "rollback.refused") == 0
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        assert len(uow.approvals.list_for(rollback_id=1)) == 1


def test_a_slack_retry_of_a_slash_command_is_a_no_op(stack: LoopbackStack) -> None:
    release(stack)
    payload = stack.driver.command_payload("checkout", user_id=ALICE, channel_id=CHANNEL)
    body = urlencode(payload).encode()
    for retry in (None, 1):
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers.update(sign_request(SIGNING_SECRET, body))
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
        assert stack.driver.raw(body, headers).status_code == 200
    filled_modal(stack)
    assert len([v for v in stack.slack.views if v["op"] == "open"]) == 1
    assert not [c for c in stack.slack.calls_for("views.open") if not c["ok"]]
