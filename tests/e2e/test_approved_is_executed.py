"""The approved plan is the executed plan: a hotfix landing mid-decision means asking again.

The form previews "from revision 2 (v2) to revision 1 (v1)". If v3 is deployed before
the form is submitted, or before the approver clicks, nobody decided about rolling back
from v3: the bot says what moved and acts on nothing.
"""

from __future__ import annotations

from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack
from tests.e2e.conftest import ALICE, BOB, CHANNEL, release
from tests.e2e.execute_support import writes
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

HOTFIX = "registry.local/checkout:v3"


def _hotfix(stack: LoopbackStack) -> None:
    stack.set_image("shop", "checkout", HOTFIX)
    stack.wait_available("shop", "checkout")


def test_a_form_submitted_after_a_hotfix_requests_nothing(stack: LoopbackStack) -> None:
    release(stack)
    seen = len(stack.slack.views)
    stack.driver.command("checkout", user_id=ALICE, channel_id=CHANNEL)
    view = filled_modal(stack, seen)
    _hotfix(stack)
    stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=view["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "5xx after v2"}},
    )
    said = wait_told(stack, ALICE, "changed since the form was opened")
    assert "it ran revision 2 (registry.local/checkout:v2) when you decided" in said
    assert f"runs revision 3 ({HOTFIX}) now" in said
    assert "Nothing was requested; open the form again." in said
    assert state_of(stack, 1) is None
    assert ("rollback.refused", ALICE) in kinds(stack)


def test_an_approval_after_a_hotfix_withdraws_the_request(stack: LoopbackStack) -> None:
    release(stack)
    assert request_via_command(stack, "checkout").status_code == 200
    message = message_with(stack, action_ids.APPROVE)
    _hotfix(stack)
    written = len(writes(stack, "checkout", dry_run=False))
    found = button(message, action_ids.APPROVE)
    assert found is not None
    stack.driver.click(
        action_id=action_ids.APPROVE,
        value=found["value"],
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )
    said = wait_told(stack, BOB, "Cannot approve R-1")
    assert "checkout changed since R-1 was requested" in said
    assert f"runs revision 3 ({HOTFIX}) now" in said
    wait_state(stack, 1, "aborted")
    assert ("rollback.expired", "rollback-bot") in kinds(stack, 1)
    assert ("rollback.approved", BOB) not in kinds(stack, 1)
    assert len(writes(stack, "checkout", dry_run=False)) == written  # nothing rolled back

    # The slot is free: a new request shows the plan from v3.
    assert request_via_command(stack, "checkout").status_code == 200
    wait_state(stack, 2, "requested")
