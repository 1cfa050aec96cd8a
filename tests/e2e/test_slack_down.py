"""When Slack itself fails, the person is told so and nothing half-happens.

A modal that Slack will not open is said ephemerally, with what to do; a bot restarted
while ``auth.test`` fails still answers commands and clicks (bolt's own check would refuse
them all with "your installation with this app is no longer available").
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from rollback_bot.slack.ui import action_ids
from rollback_bot.timeline import TimelineKind
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import ALICE, BOB, CHANNEL, alertmanager_payload, release
from tests.e2e.test_slack_commands import (
    button,
    message_with,
    request_via_command,
    state_of,
    told,
    wait_state,
    wait_told,
)


def test_a_form_slack_will_not_open_is_said_and_nothing_is_requested(stack: LoopbackStack) -> None:
    release(stack)
    stack.slack.inject("views.open", error="expired_trigger_id")
    resp = stack.driver.command("checkout", user_id=ALICE, channel_id=CHANNEL)
    assert resp.status_code == 200

    said = wait_told(stack, ALICE, "Could not open the rollback form for checkout")
    assert "Slack answered `expired_trigger_id`" in said
    assert "Nothing was done; run it again" in said
    assert state_of(stack, 1) is None  # no request row, nothing to approve

    # Once Slack opens forms again, the same command works.
    assert request_via_command(stack, "checkout").status_code == 200
    wait_state(stack, 1, "requested")


def test_a_deny_form_slack_will_not_open_points_to_the_command(stack: LoopbackStack) -> None:
    release(stack)
    assert request_via_command(stack, "checkout").status_code == 200
    message = message_with(stack, action_ids.APPROVE)
    stack.slack.inject("views.open", status=503, count=10)  # past any client retry
    found = button(message, action_ids.DENY)
    assert found is not None
    stack.driver.click(
        action_id=action_ids.DENY,
        value=found["value"],
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )
    said = wait_told(stack, BOB, "Could not open the deny form")
    assert "Or deny with `/rollback deny R-1 <reason>`." in said
    assert state_of(stack, 1) == "requested"


def test_a_bot_started_while_auth_test_fails_still_answers(
    migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.e2e.conftest import CATALOG, FAST_SLACK

    with LoopbackStack(
        slack_channel_rate=FAST_SLACK, catalog=CATALOG, database_url=migrated_url, ready_delay=0.05
    ) as stack:
        # Slack's auth.test fails from before the first request on, for the whole test.
        stack.slack.inject("auth.test", error="service_unavailable", count=1000)
        release(stack)
        with caplog.at_level(logging.WARNING, logger="rollback_bot.slack.identity"):
            help_answer = stack.driver.command("help", user_id=ALICE, channel_id=CHANNEL)
        assert help_answer.status_code == 200
        assert "no longer available" not in told(stack, ALICE, help_answer)
        assert "/rollback approve" in told(stack, ALICE, help_answer)
        assert "Slack auth.test failed (service_unavailable)" in caplog.text

        assert request_via_command(stack, "checkout").status_code == 200
        message = message_with(stack, action_ids.APPROVE)
        found = button(message, action_ids.APPROVE)
        assert found is not None
        stack.driver.click(
            action_id=action_ids.APPROVE,
            value=found["value"],
            user_id=BOB,
            channel_id=CHANNEL,
            message_ts=message["ts"],
        )
        wait_state(stack, 1, "done")
        # The refusal bolt would have sent never reached anyone.
        assert "no longer available" not in told(stack, BOB)


def test_an_alert_that_arrives_while_slack_fails_is_posted_once_slack_is_back(
    stack: LoopbackStack,
) -> None:
    # Each outbox attempt is three calls (slack_sdk retries 5xx twice); two attempts fail.
    stack.slack.inject("chat.postMessage", status=503, count=6)
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    posted = wait_until(lambda: stack.slack.messages(CHANNEL), timeout=20)
    assert len(posted) == 1 and "HighErrorRate" in posted[0]["text"]
    refused = [c for c in stack.slack.calls_for("chat.postMessage") if not c["ok"]]
    assert len(refused) == 6


def test_a_message_slack_refuses_for_good_is_on_the_timeline_and_in_metrics(
    stack: LoopbackStack,
) -> None:
    assert stack.services is not None
    stack.slack.inject("chat.postMessage", error="channel_not_found")  # not worth a retry
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200

    def undelivered() -> list[Any]:
        assert stack.services is not None
        with stack.services.uow(read_only=True) as uow:
            events = uow.timeline.list_for_incident(incident_id=1)
        return [e for e in events if e.kind == TimelineKind.SLACK_UNDELIVERED]

    (gone,) = wait_until(undelivered, timeout=10)
    assert gone.summary == f"Slack never received a message in {CHANNEL} (channel_not_found)"
    assert gone.data["cause"] == "channel_not_found"
    assert gone.data["message"].startswith("group:")
    assert stack.slack.messages(CHANNEL) == []
    metrics = requests.get(f"{stack.url}/metrics", timeout=5).text
    assert "rollback_bot_slack_write_errors_total 1.0" in metrics
