"""``python -m sandbox.slack send|click``: a person at a terminal, through the running stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollback_bot.slack.ui import action_ids
from sandbox.slack.__main__ import main
from sandbox.slack.remote import DemoState, DriveError, Session
from sandbox.stack import SIGNING_SECRET, LoopbackStack, wait_until
from tests.e2e.conftest import ALICE, BOB, CHANNEL, release
from tests.e2e.test_slack_commands import request_via_command, state_of


def _state(stack: LoopbackStack, tmp_path: Path) -> Path:
    return DemoState(
        events_url=f"{stack.url}/slack/events",
        signing_secret=SIGNING_SECRET,
        slack_url=stack.slack.root_url,
        channels=(CHANNEL, "C0SEARCH"),
        default_channel=CHANNEL,
    ).write(tmp_path / "state.json")


def test_click_r1_approve_runs_the_rollback(
    stack: LoopbackStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release(stack)
    assert request_via_command(stack, "checkout").status_code == 200
    state = _state(stack, tmp_path)
    wait_until(lambda: state_of(stack, 1) == "requested")
    # The Approve button arrives with the request message, which the outbox posts after the
    # row is written: a person can only click it once Slack shows it.
    wait_until(lambda: action_ids.APPROVE in json.dumps(stack.slack.messages(CHANNEL)))

    # Alice may not approve her own request: the refusal reaches her terminal.
    assert main(["click", "R-1", "approve", "--user", ALICE, "--state", str(state)]) == 0
    refused = capsys.readouterr().out
    assert refused.startswith("clicked [Approve] on R-1"), refused
    # The refusal is an ephemeral that comes after the acknowledgement; the driver prints
    # what arrived within its short wait, so on a loaded machine read it where Slack has it.
    wait_until(
        lambda: any(
            "you requested this rollback" in json.dumps(e) for e in stack.slack.ephemerals(ALICE)
        )
    )

    assert main(["click", "r1", "approve", "--user", BOB, "--state", str(state)]) == 0
    assert capsys.readouterr().out.startswith("clicked [Approve] on R1")
    wait_until(lambda: state_of(stack, 1) == "done", timeout=30)

    assert main(["send", "--user", BOB, "/rollback status", "--state", str(state)]) == 0
    assert "No active rollbacks." in capsys.readouterr().out


def test_what_cannot_be_sent_is_said_plainly(stack: LoopbackStack, tmp_path: Path) -> None:
    state = DemoState.read(_state(stack, tmp_path))
    with pytest.raises(DriveError, match="no user U0NOBODY in the workspace"):
        Session(state, "U0NOBODY")
    session = Session(state, BOB)
    with pytest.raises(DriveError, match="unknown button 'approv'"):
        session.click("R-1", "approv")
    with pytest.raises(DriveError, match="neither a rollback"):
        session.click("X-1", "approve")
    with pytest.raises(DriveError, match="no running demo found"):
        DemoState.read(tmp_path / "absent.json")
