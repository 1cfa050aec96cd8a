"""Notes from people, over signed HTTP: ``/rollback note`` and "Add to incident timeline".

Both become a ``note.added`` entry on the incident's (hash-chained) timeline with who added
it; the shortcut also keeps the message's author and permalink. Refusals are answered and
recorded; text going back into Slack is escaped; secrets are redacted before storing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rollback_bot.slack.ui import action_ids
from rollback_bot.storage.chain import verify
from rollback_bot.storage.models import TimelineEvent
from rollback_bot.timeline import TimelineKind
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import (
    ALICE,
    BOB,
    CATALOG,
    CHANNEL,
    FAST_SLACK,
    MALLORY,
    MakeStack,
    alertmanager_payload,
)
from tests.e2e.test_slack_commands import told, wait_told

# Slack, alerts and HTTP only: the real control plane would repeat the emulator run.
pytestmark = pytest.mark.kube_free

TOKEN = "xoxb-1234567890-abcdefghijkl"


def _catalog() -> dict[str, Any]:
    catalog = copy.deepcopy(CATALOG)
    cart = copy.deepcopy(catalog["services"][0])
    cart.update(name="cart", deployment="cart", match={"service": "cart"})
    catalog["services"].append(cart)  # shares checkout's channel: a message there is ambiguous
    return catalog


@pytest.fixture
def stack(make_stack: MakeStack, migrated_url: str) -> Iterator[LoopbackStack]:
    with make_stack(
        slack_channel_rate=FAST_SLACK,
        catalog=_catalog(),
        database_url=migrated_url,
        ready_delay=0.05,
    ) as s:
        yield s


def _open_incident(stack: LoopbackStack, service: str = "checkout") -> tuple[int, str]:
    """Fire an alert; the incident id and the ts of its alert message."""
    assert stack.post_alert("alertmanager", alertmanager_payload(service)).status_code == 200

    def posted() -> tuple[int, str] | None:
        assert stack.services is not None
        with stack.services.uow(read_only=True) as uow:
            incident = uow.incidents.open_for_service(service=service)
            groups = uow.alert_groups.list_for_incident(incident_id=incident.id) if incident else []
        ts = next((g.message_ts for g in groups if g.message_ts), None)
        return (incident.id, ts) if incident is not None and ts else None

    return wait_until(posted, timeout=10)


def _entries(stack: LoopbackStack, kind: str) -> list[TimelineEvent]:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        rows = uow.timeline.list_for_service(service="checkout")
        rows += uow.timeline.list_for_service(service="cart")
    return [r for r in rows if r.kind == kind]


def _wait_entries(stack: LoopbackStack, kind: str, n: int) -> list[TimelineEvent]:
    return wait_until(lambda: (e := _entries(stack, kind)) and len(e) >= n and e, timeout=10)


def test_note_command_adds_an_escaped_redacted_note_with_its_author(stack: LoopbackStack) -> None:
    incident, _ts = _open_incident(stack)
    text = f'it\'s "odd": <!channel> the 5xx began at 09:12 <https://evil|docs> {TOKEN}'
    stack.driver.command(f"note INC-{incident} {text}", user_id=ALICE, channel_id=CHANNEL)
    answer = wait_told(stack, ALICE, f"Added to the timeline of INC-{incident}")
    assert "&lt;!channel&gt;" in answer and "<!channel>" not in answer
    assert TOKEN not in answer and "[redacted]" in answer
    [note] = _wait_entries(stack, TimelineKind.NOTE_ADDED, 1)
    assert (note.actor, note.incident_id) == (ALICE, incident)
    assert note.data["added_by"] == ALICE and note.data["source"] == "command"
    assert note.data["text"].startswith('it\'s "odd": <!channel> the 5xx')  # stored as typed
    assert TOKEN not in json.dumps(note.data) + note.summary
    # Bolt would drop any command whose text says "payload"; the web layer parses it.
    stack.driver.command(
        f"note INC-{incident} the payload service died first", user_id=ALICE, channel_id=CHANNEL
    )
    wait_told(stack, ALICE, "the payload service died first")
    assert stack.services is not None
    assert verify(stack.services.engine, incident_id=incident).ok


def test_someone_who_may_not_act_for_the_service_is_refused_and_it_is_recorded(
    stack: LoopbackStack,
) -> None:
    incident, _ts = _open_incident(stack)
    stack.driver.command(f"note INC-{incident} all fine here", user_id=MALLORY, channel_id=CHANNEL)
    # Mallory is not in the stand-in's directory, so the answer is read at the response_url.
    wait_until(
        lambda: any(
            "Refused: you may not add notes to incidents of" in r.get("text", "")
            for r in stack.slack.responses
        )
    )
    [refusal] = _wait_entries(stack, TimelineKind.NOTE_REFUSED, 1)
    assert (refusal.actor, refusal.incident_id) == (MALLORY, incident)
    assert "all fine here" not in refusal.summary + json.dumps(refusal.data)
    assert _entries(stack, TimelineKind.NOTE_ADDED) == []

    stack.driver.command("note INC-99 hello", user_id=ALICE, channel_id=CHANNEL)
    wait_told(stack, ALICE, "there is no incident INC-99")
    resp = stack.driver.command(f"note INC-{incident}", user_id=ALICE, channel_id=CHANNEL)
    assert "What is the note?" in told(stack, ALICE, resp)


def test_message_shortcut_adds_the_message_its_author_and_permalink(stack: LoopbackStack) -> None:
    incident, alert_ts = _open_incident(stack)
    # Bob says something useful in the alert's thread; Alice adds it to the timeline.
    said = stack.slack.post_as_user(
        BOB, CHANNEL, f"payments deployed at 09:11 <@U0ALICE> token {TOKEN}", thread_ts=alert_ts
    )
    payload = stack.driver.message_shortcut_payload(
        callback_id=action_ids.ADD_TO_TIMELINE,
        user_id=ALICE,
        channel_id=CHANNEL,
        message_ts=said["ts"],
    )
    assert payload["type"] == "message_action"
    resp = stack.driver.message_shortcut(
        callback_id=action_ids.ADD_TO_TIMELINE,
        user_id=ALICE,
        channel_id=CHANNEL,
        message_ts=said["ts"],
    )
    assert resp.status_code == 200
    answer = wait_told(stack, ALICE, f"Added to the timeline of INC-{incident}")
    assert "&lt;@U0ALICE&gt;" in answer and TOKEN not in answer
    [note] = _wait_entries(stack, TimelineKind.NOTE_ADDED, 1)
    assert note.actor == ALICE and note.incident_id == incident
    assert note.data["author"] == BOB and note.data["added_by"] == ALICE
    assert note.data["source"] == "message" and note.data["message_ts"] == said["ts"]
    permalink = note.data["permalink"]
    assert permalink.startswith(f"https://sandbox.slack.com/archives/{CHANNEL}/p")
    assert f"thread_ts={alert_ts}" in permalink
    assert TOKEN not in json.dumps(note.data) + note.summary and "[redacted]" in note.summary
    assert [c["args"]["message_ts"] for c in stack.slack.calls_for("chat.getPermalink")] == [
        said["ts"]
    ]
    assert stack.services is not None
    assert verify(stack.services.engine).ok


def test_shortcut_on_a_message_that_names_no_single_incident_is_answered(
    stack: LoopbackStack,
) -> None:
    lonely = stack.slack.post_as_user(BOB, "C0SEARCH", "is search slow for anyone?")
    stack.driver.message_shortcut(
        callback_id=action_ids.ADD_TO_TIMELINE,
        user_id=ALICE,
        channel_id="C0SEARCH",
        message_ts=lonely["ts"],
    )
    wait_told(stack, ALICE, "no incident is open in this channel")

    first, _ = _open_incident(stack, "checkout")
    second, _ = _open_incident(stack, "cart")
    top = stack.slack.post_as_user(BOB, CHANNEL, "rolled back by hand")
    stack.driver.message_shortcut(
        callback_id=action_ids.ADD_TO_TIMELINE,
        user_id=ALICE,
        channel_id=CHANNEL,
        message_ts=top["ts"],
    )
    answer = wait_told(stack, ALICE, "Which incident?")
    assert f"INC-{first}" in answer and f"INC-{second}" in answer
    assert _entries(stack, TimelineKind.NOTE_ADDED) == []


def test_a_retried_shortcut_adds_one_note(stack: LoopbackStack) -> None:
    incident, alert_ts = _open_incident(stack)
    said = stack.slack.post_as_user(BOB, CHANNEL, "db failover at 09:15", thread_ts=alert_ts)
    payload = stack.driver.message_shortcut_payload(
        callback_id=action_ids.ADD_TO_TIMELINE,
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=said["ts"],
    )
    from sandbox.slack.driver import FORM, _interactivity_body
    from sandbox.slack.signing import sign_request

    body = _interactivity_body(payload)
    for retry in (None, "1"):
        headers = {"Content-Type": FORM, **sign_request(stack.driver.signing_secret, body)}
        if retry:
            headers["X-Slack-Retry-Num"] = retry
        assert stack.driver.raw(body, headers).status_code == 200
    wait_told(stack, BOB, f"Added to the timeline of INC-{incident}")
    notes = _wait_entries(stack, TimelineKind.NOTE_ADDED, 1)
    assert len(notes) == 1 and notes[0].data["author"] == BOB
    assert "from" not in notes[0].summary  # Bob added his own message
