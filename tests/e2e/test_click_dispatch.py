"""Every button of the bot reaches its work through the one action listener; answers reuse
the bot's connection to Slack.

Buttons are clicked over signed HTTP on the loopback stack; what each person is told is
read from the Slack stand-in, which also counts the connections it accepted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import BOB, CATALOG, CHANNEL, MakeStack

pytestmark = pytest.mark.kube_free


def _told(stack: LoopbackStack, user: str) -> list[str]:
    return [e.get("text", "") for e in stack.slack.ephemerals(user)]


@pytest.mark.parametrize("action", sorted(action_ids.ALL_ACTIONS))
def test_every_button_is_acknowledged_and_answered(stack: LoopbackStack, action: str) -> None:
    before = len(_told(stack, BOB))
    resp = stack.driver.click(
        action_id=action, value="not json", user_id=BOB, channel_id=CHANNEL, message_ts="1.1"
    )
    assert resp.status_code == 200
    wait_until(lambda: len(_told(stack, BOB)) > before, timeout=10)
    answer = _told(stack, BOB)[before]
    if action == action_ids.RESUME_GITOPS and stack.services and stack.services.gitops is None:
        assert answer == "GitOps resume is not set up in this bot."
    else:
        assert answer == "That button could not be read; nothing was done."


def test_a_click_signed_ahead_and_sent_later_is_what_click_sends(stack: LoopbackStack) -> None:
    """``signed_click`` (the click-to-PATCH bench times the delivery alone) is a real click."""
    body, headers = stack.driver.signed_click(
        action_id=action_ids.APPROVE, value="not json", user_id=BOB, channel_id=CHANNEL,
        message_ts="1.1",
    )  # fmt: skip
    resp = requests.post(stack.driver.events_url, data=body, headers=headers, timeout=10)
    assert resp.status_code == 200
    wait_until(lambda: _told(stack, BOB), timeout=10)
    assert _told(stack, BOB) == ["That button could not be read; nothing was done."]


def test_a_button_that_is_not_ours_is_not_acted_on(stack: LoopbackStack) -> None:
    resp = stack.driver.click(
        action_id="someone.elses", value="{}", user_id=BOB, channel_id=CHANNEL, message_ts="1.1"
    )
    assert resp.status_code == 404  # bolt: no listener for it
    assert _told(stack, BOB) == []


def test_answers_to_clicks_reuse_the_connection_to_slack(stack: LoopbackStack) -> None:
    clicks = 20
    for n in range(clicks):
        value = '{"rollback_id": 999999}'
        resp = stack.driver.click(
            action_id=action_ids.APPROVE, value=value, user_id=BOB, channel_id=CHANNEL,
            message_ts="1.1",
        )  # fmt: skip
        assert resp.status_code == 200
        wait_until(lambda n=n: len(_told(stack, BOB)) > n, timeout=10)
    assert _told(stack, BOB) == ["There is no rollback R-999999."] * clicks
    # One connection per thread that answers (SLACK_WORK_THREADS of them), not one per answer.
    assert stack.services is not None
    answers = stack.slack.calls_for("chat.postEphemeral")
    threads = stack.services.settings.slack_work_threads
    assert len({call["connection"] for call in answers}) <= threads < clicks


def test_the_work_behind_acks_runs_on_slack_work_threads(
    migrated_url: str, make_stack: MakeStack
) -> None:
    """One work thread: a burst of clicks is acknowledged at once and answered one by one,
    all from that thread, so over the one connection it keeps to Slack."""
    with make_stack(
        catalog=CATALOG, database_url=migrated_url, slack_work_threads=1, ready_delay=0.05
    ) as stack:
        clicks = 8
        payload = {"action_id": action_ids.APPROVE, "user_id": BOB, "channel_id": CHANNEL}
        with ThreadPoolExecutor(max_workers=clicks) as pool:
            statuses = list(
                pool.map(
                    lambda _: (
                        stack.driver.click(
                            value='{"rollback_id": 999999}', message_ts="1.1", **payload
                        ).status_code
                    ),
                    range(clicks),
                )
            )
        assert statuses == [200] * clicks
        wait_until(lambda: len(_told(stack, BOB)) >= clicks, timeout=20)
        assert _told(stack, BOB) == ["There is no rollback R-999999."] * clicks
        answers = stack.slack.calls_for("chat.postEphemeral")
        assert len({call["connection"] for call in answers}) == 1
