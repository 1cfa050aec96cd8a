"""Button values and modal metadata that are not the bot's: the person is told, nothing acts."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from rollback_bot.slack.ui import action_ids
from rollback_bot.storage.models import Rollback, TimelineEvent
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import BOB, CHANNEL

# Slack, alerts and HTTP only: the real control plane would repeat the emulator run.
pytestmark = pytest.mark.kube_free

SHAPES = [
    '{"rollback_id":[1]}',
    '{"rollback_id":{"a":1}}',
    '{"rollback_id":"one"}',
    "{}",
    "[1,2]",
    "not json",
    '{"service":["checkout"]}',
]


def _counts(stack: LoopbackStack) -> tuple[int, int]:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        rollbacks = uow.session.scalar(select(func.count()).select_from(Rollback)) or 0
        events = uow.session.scalar(select(func.count()).select_from(TimelineEvent)) or 0
    return rollbacks, events


@pytest.mark.parametrize("action", [action_ids.APPROVE, action_ids.ROLL_BACK, action_ids.EXPORT])
def test_a_malformed_button_value_is_answered_and_acts_on_nothing(
    stack: LoopbackStack, action: str
) -> None:
    before = _counts(stack)
    for i, value in enumerate(SHAPES):
        resp = stack.driver.click(
            action_id=action, value=value, user_id=BOB, channel_id=CHANNEL, message_ts="1.1"
        )
        assert resp.status_code == 200
        wait_until(
            lambda n=i + 1: (
                sum("could not be read" in e.get("text", "") for e in stack.slack.ephemerals(BOB))
                >= n
            ),
            timeout=10,
        )
    assert _counts(stack) == before


@pytest.mark.parametrize(
    "metadata", ["not json", "[1]", "{}", '{"service": 3}', json.dumps({"to": 1}), ""]
)
def test_broken_request_modal_metadata_is_answered_in_the_modal(
    stack: LoopbackStack, metadata: str
) -> None:
    before = _counts(stack)
    resp = stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=BOB,
        private_metadata=metadata,
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "why"}},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["response_action"] == "errors"
    assert "could not be read" in body["errors"][action_ids.REASON_BLOCK]
    assert _counts(stack) == before


@pytest.mark.parametrize("metadata", ["not json", "[1]", '{"rollback_id": [1]}', "{}"])
def test_broken_deny_modal_metadata_is_answered_in_the_modal(
    stack: LoopbackStack, metadata: str
) -> None:
    before = _counts(stack)
    resp = stack.driver.submit_view(
        callback_id=action_ids.DENY_MODAL,
        user_id=BOB,
        private_metadata=metadata,
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "no"}},
    )
    assert resp.status_code == 200 and resp.json()["response_action"] == "errors"
    assert _counts(stack) == before
