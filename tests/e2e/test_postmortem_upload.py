"""`/rollback export` in Slack: the Markdown and the picture as a PNG, uploaded into the
incident's thread through Slack's two-step upload, people named through users.info."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import BOB, CATALOG, CHANNEL, FAST_SLACK, alertmanager_payload, release
from tests.e2e.test_slack_commands import message_with, wait_told


@pytest.fixture
def named_stack(migrated_url: str) -> Iterator[LoopbackStack]:
    with LoopbackStack(
        slack_channel_rate=FAST_SLACK,
        catalog=CATALOG,
        database_url=migrated_url,
        ready_delay=0.05,
        users={BOB: {"name": "bob", "real_name": "Bob Builder"}},
    ) as s:
        yield s


def test_export_uploads_markdown_and_png_into_the_incident_thread(
    named_stack: LoopbackStack,
) -> None:
    stack = named_stack
    release(stack)
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    alert = message_with(stack, action_ids.ROLL_BACK)

    resp = stack.driver.command("export INC-1", user_id=BOB, channel_id=CHANNEL)
    wait_told(stack, BOB, "uploaded", resp)
    first = wait_until(lambda: stack.slack.uploads if len(stack.slack.uploads) >= 2 else None)
    md, png = first[0], first[1]
    assert md["filename"] == "postmortem-INC-1.md"
    text = md["content"].decode() if isinstance(md["content"], bytes) else md["content"]
    assert "```mermaid\ngantt" in text and "- Severity: critical" in text
    assert png["filename"] == "postmortem-INC-1-timeline.png"
    assert bytes(png["content"]).startswith(b"\x89PNG\r\n\x1a\n")
    # Two-step: an upload URL per file, one completion sharing both into the alert's thread.
    assert len(stack.slack.calls_for("files.getUploadURLExternal")) == 2
    (complete,) = stack.slack.calls_for("files.completeUploadExternal")
    assert complete["args"]["thread_ts"] == alert["ts"]
    assert md["thread_ts"] == png["thread_ts"] == alert["ts"]
    shared = [m for m in stack.slack.thread(CHANNEL, alert["ts"]) if m.get("files")]
    assert [f["name"] for f in shared[0]["files"]] == [md["filename"], png["filename"]]

    # The first export is on the timeline; the next one names Bob through users.info.
    resp = stack.driver.command("export INC-1", user_id=BOB, channel_id=CHANNEL)
    wait_told(stack, BOB, "uploaded", resp)
    second = wait_until(lambda: stack.slack.uploads if len(stack.slack.uploads) >= 4 else None)
    text = second[2]["content"]
    text = text.decode() if isinstance(text, bytes) else text
    assert f"| Bob Builder ({BOB}) | postmortem.exported |" in text
    assert stack.slack.calls_for("users.info")


def test_status_shows_the_open_incidents(named_stack: LoopbackStack) -> None:
    stack = named_stack
    resp = stack.driver.command("status", user_id=BOB, channel_id=CHANNEL)
    assert "No open incidents." in wait_told(stack, BOB, "No open incidents", resp)

    release(stack)
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    message_with(stack, action_ids.ROLL_BACK)
    resp = stack.driver.command("status", user_id=BOB, channel_id=CHANNEL)
    text = wait_told(stack, BOB, "Open incidents (1)", resp)
    assert "INC-1" in text and "checkout" in text and "TTA n/a" in text
