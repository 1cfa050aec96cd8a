"""Block Kit built from view models, asserted as data: buttons, values, confirms, limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import HeaderBlock

from rollback_bot.incidents.queries import RevisionRow, StatusRow
from rollback_bot.rollbacks.lifecycle import Move, State, allowed_moves
from rollback_bot.slack.commands import VERBS, CommandError, parse
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.alert_card import alert_message, suggestion_message
from rollback_bot.slack.ui.command_help import error_text, help_blocks
from rollback_bot.slack.ui.deny_modal import deny_modal
from rollback_bot.slack.ui.history import history_blocks
from rollback_bot.slack.ui.kit import InvalidPayload, actions, button, message, section
from rollback_bot.slack.ui.limits import (
    MAX_MESSAGE_BLOCKS,
    MAX_MESSAGE_TEXT,
    MAX_MODAL_BLOCKS,
    clip,
)
from rollback_bot.slack.ui.mrkdwn import escape, format_duration
from rollback_bot.slack.ui.notices import loading_modal, message_modal
from rollback_bot.slack.ui.request_modal import request_modal
from rollback_bot.slack.ui.rollback_message import rollback_message
from rollback_bot.slack.ui.status import status_blocks
from rollback_bot.slack.ui.thread import speaks, summary_line, transition_line
from rollback_bot.slack.ui.values import button_value, read_button_value, submitted_reason
from rollback_bot.slack.ui.views import (
    AlertGroupView,
    Change,
    RequestPreview,
    RollbackView,
    actions_for,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

ALERT = AlertGroupView(
    group_id=3,
    alertname="HighErrorRate",
    severity="critical",
    status="firing",
    firing_count=3,
    total_count=5,
    first_seen=NOW - timedelta(minutes=5),
    last_seen=NOW,
    incident_id=7,
    service="checkout",
    environment="production",
    cluster="eu-1",
    summary="5xx above 5%",
    description="Checkout returns errors since the deploy.",
    runbook_url="https://runbooks.example/checkout",
    dashboard_url="https://grafana.example/d/abc?var=a|b",
    current_revision=42,
    current_image="registry/checkout:v1.5.0",
    stable_revision=41,
    stable_image="registry/checkout:v1.4.2",
    can_roll_back=True,
    can_silence=True,
)

ROLLBACK = RollbackView(
    rollback_id=12,
    service="checkout",
    environment="production",
    strategy="instant",
    state=State.REQUESTED,
    requested_by="U0ALICE",
    incident_id=7,
    reason="5xx after deploy",
    from_revision=42,
    from_image="registry/checkout:v1.5.0",
    to_revision=41,
    to_image="registry/checkout:v1.4.2",
    approvals_required=1,
    may_approve="<@U0BOB>, <!subteam^S0SRE>",
    changes=(Change("image", "registry/checkout:v1.5.0", "registry/checkout:v1.4.2"),),
    actions=actions_for(State.REQUESTED, allowed_moves(State.REQUESTED), incident=True),
)


# --- walking the payloads ---------------------------------------------------------


def elements(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for block in blocks:
        if block["type"] == "actions":
            yield from block["elements"]
        if "accessory" in block:
            yield block["accessory"]


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for e in elements(blocks) if e["type"] == "button"}


def all_text(blocks: list[dict[str, Any]]) -> str:
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def assert_within_limits(blocks: list[dict[str, Any]], max_blocks: int = 50) -> None:
    assert len(blocks) <= max_blocks
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
        if block["type"] == "actions":
            assert 0 < len(block["elements"]) <= 25
    for element in elements(blocks):
        assert element["action_id"] in action_ids.ALL_ACTIONS
        assert len(element["text"]["text"]) <= 75
        assert len(element["value"]) <= 2000
        if "confirm" in element:
            assert len(element["confirm"]["title"]["text"]) <= 100
            assert len(element["confirm"]["text"]["text"]) <= 300


# --- alert -------------------------------------------------------------------------


def test_firing_alert_offers_roll_back_and_silence() -> None:
    text, blocks = alert_message(ALERT)
    assert_within_limits(blocks)
    found = buttons(blocks)
    roll_back = found[action_ids.ROLL_BACK]
    assert "Roll back" in roll_back["text"]["text"]
    assert read_button_value(roll_back["value"]) == {
        "group_id": 3,
        "incident_id": 7,
        "service": "checkout",
    }
    # It opens the confirmation modal, which is the confirmation.
    assert "confirm" not in roll_back
    assert found[action_ids.SILENCE_1H]["text"]["text"].endswith("Silence 1h")
    assert read_button_value(found[action_ids.SILENCE_1H]["value"]) == {"group_id": 3}
    for essential in ("FIRING", "HighErrorRate", "checkout", "production", "INC-7", "3 of 5"):
        assert essential in text
    body = all_text(blocks)
    assert "revision 41" in body and "revision 42" in body
    # A `|` in a URL would end the link early.
    assert "var=a%7Cb|Dashboard>" in body


def test_no_roll_back_without_permission_or_service() -> None:
    _, blocks = alert_message(replace(ALERT, can_roll_back=False, can_silence=False))
    assert buttons(blocks) == {}
    assert not any(b["type"] == "actions" for b in blocks)
    _, blocks = alert_message(replace(ALERT, service=None))
    assert action_ids.ROLL_BACK not in buttons(blocks)


def test_resolved_alert_is_green_and_says_how_long_it_lasted() -> None:
    view = replace(ALERT, status="resolved", resolved_after=timedelta(minutes=12, seconds=30))
    text, blocks = alert_message(view)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"].startswith("✅")
    assert "12m 30s" in text and "12m 30s" in all_text(blocks)
    assert action_ids.SILENCE_1H not in buttons(blocks)
    assert read_button_value(buttons(blocks)[action_ids.EXPORT]["value"]) == {"incident_id": 7}


def test_text_from_alerts_is_escaped_mentions_included() -> None:
    # An alert's text must not page anyone: a mention in it is shown as typed.
    view = replace(ALERT, summary="<!channel> p99 > 2s & rising", description="ask <@U0BOB>")
    _, blocks = alert_message(view)
    body = all_text(blocks)
    assert "&lt;!channel&gt; p99 &gt; 2s &amp; rising" in body
    assert "<!channel>" not in body
    assert "ask &lt;@U0BOB&gt;" in body and "<@U0BOB>" not in body


# --- rollback ------------------------------------------------------------------------


def test_request_needing_approval_shows_approve_and_deny() -> None:
    text, blocks = rollback_message(ROLLBACK)
    assert_within_limits(blocks)
    found = buttons(blocks)
    assert found[action_ids.APPROVE]["text"]["text"] == "Approve"
    assert found[action_ids.DENY]["text"]["text"] == "Deny"
    for action in (action_ids.APPROVE, action_ids.DENY, action_ids.ABORT):
        assert read_button_value(found[action]["value"]) == {"rollback_id": 12}
    assert "confirm" in found[action_ids.ABORT]
    assert "confirm" not in found[action_ids.APPROVE]
    assert action_ids.EXPORT not in found  # not finished yet
    assert "R-12" in text and "checkout" in text and "awaiting approval" in text
    assert "0 of 1" in text
    body = all_text(blocks)
    assert "May approve: <@U0BOB>, <!subteam^S0SRE>" in body
    assert "`registry/checkout:v1.5.0` → `registry/checkout:v1.4.2`" in body


def test_drill_is_marked_in_header_and_text() -> None:
    text, blocks = rollback_message(replace(ROLLBACK, drill=True))
    assert "DRILL" in blocks[0]["text"]["text"]
    assert text.startswith("DRILL")
    assert "nothing is changed" in all_text(blocks)


def test_countdown_shows_seconds_cancel_and_roll_back_now() -> None:
    view = replace(
        ROLLBACK,
        state=State.SCHEDULED,
        automatic=True,
        requested_by="automation",
        approvals_required=0,
        countdown_ends_at=NOW + timedelta(seconds=60),
        actions=actions_for(State.SCHEDULED, allowed_moves(State.SCHEDULED)),
    )
    text, blocks = rollback_message(view, now=NOW)
    line = "Automatic rollback of checkout to revision 41 in 60 s"
    assert line in text and line in all_text(blocks)
    found = buttons(blocks)
    assert set(found) == {action_ids.CANCEL_COUNTDOWN, action_ids.RUN_NOW}
    assert found[action_ids.CANCEL_COUNTDOWN]["text"]["text"] == "Cancel"
    assert found[action_ids.RUN_NOW]["text"]["text"] == "Roll back now"
    assert found[action_ids.RUN_NOW]["confirm"]["style"] == "danger"
    assert "confirm" not in found[action_ids.CANCEL_COUNTDOWN]


@pytest.mark.parametrize("state", list(State))
def test_buttons_follow_the_lifecycle(state: State) -> None:
    moves = allowed_moves(state)
    view = replace(ROLLBACK, state=state, actions=actions_for(state, moves, incident=True))
    text, blocks = rollback_message(view)
    assert_within_limits(blocks)
    shown = set(buttons(blocks))
    assert (action_ids.APPROVE in shown) == (Move.APPROVE in moves)
    assert (action_ids.PAUSE in shown) == (Move.PAUSE in moves)
    assert (action_ids.RESUME in shown) == (Move.RESUME in moves)
    assert (action_ids.RUN_NOW in shown) == (Move.RUN_NOW in moves)
    assert (action_ids.EXPORT in shown) == state.is_terminal
    if state.is_terminal:
        assert shown == {action_ids.EXPORT}
    assert "R-12" in text and "checkout" in text


def test_flag_change_offers_undo_when_done() -> None:
    actions = actions_for(State.DONE, (), flag=True)
    assert actions == (action_ids.UNDO_FLAG,)
    view = replace(ROLLBACK, state=State.DONE, strategy="flag", flag="new-pricing", actions=actions)
    _, blocks = rollback_message(view)
    undo = buttons(blocks)[action_ids.UNDO_FLAG]
    assert read_button_value(undo["value"]) == {"rollback_id": 12, "flag": "new-pricing"}
    assert "confirm" in undo


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        rollback_message(replace(ROLLBACK, actions=("nope",)))


def test_each_kind_of_change_reads_as_one_line() -> None:
    changes = (
        Change("env DEBUG", None, "1"),
        Change("env TRACE", "1", None),
        Change("Service checkout selector slot -> blue", None, None),
    )
    _, blocks = rollback_message(replace(ROLLBACK, changes=changes))
    body = all_text(blocks)
    assert "• *env DEBUG*: added `1`" in body
    assert "• *env TRACE*: removed (was `1`)" in body
    assert "• Service checkout selector slot -&gt; blue\n" in body + "\n"


def test_long_diff_is_truncated_with_a_count() -> None:
    changes = tuple(Change(f"env VAR_{i}", "a" * 50, "b" * 50) for i in range(500))
    _, blocks = rollback_message(replace(ROLLBACK, changes=changes))
    assert_within_limits(blocks)
    diff = next(b for b in blocks if "What changes" in b.get("text", {}).get("text", ""))
    lines = diff["text"]["text"].splitlines()
    shown = [line for line in lines if line.startswith("•")]
    assert lines[-1] == f"…and {500 - len(shown)} more"
    assert 0 < len(shown) < 500


def test_progress_and_summary_lines() -> None:
    running = replace(ROLLBACK, state=State.EXECUTING, step=2, steps=4, canary_percent=20)
    approved = replace(running, approvers=("U0BOB",))
    assert transition_line(approved, State.REQUESTED, State.APPROVED) == (
        "✅ <@U0BOB> approved; rolling back checkout to revision 41 `registry/checkout:v1.4.2`."
    )
    assert transition_line(running, State.EXECUTING, State.PAUSED) == (
        "⏸️ Rollback of checkout paused at step 2 of 4: Resume or Abort on the message."
    )
    # What the message or the closing summary says already is not repeated in the thread.
    assert transition_line(running, State.APPROVED, State.EXECUTING) is None
    assert transition_line(running, State.VERIFYING, State.DONE) is None
    _, blocks = rollback_message(running)
    assert "Step 2 of 4 · canary at 20%" in all_text(blocks)


def test_the_notifier_reads_a_view_only_for_changes_the_thread_speaks_of() -> None:
    view = replace(ROLLBACK, state=State.EXECUTING, step=2, steps=4, approvers=("U0BOB",))
    for before in State:
        for after in State:
            said = transition_line(view, before, after)
            assert (said is not None) == speaks(before, after), (before, after)

    done = replace(
        ROLLBACK,
        state=State.DONE,
        approvers=("U0BOB",),
        started_at=NOW,
        finished_at=NOW + timedelta(minutes=3, seconds=12),
    )
    line = summary_line(done)
    assert line.startswith("✅ R-12: checkout (production) rolled back to revision 41")
    assert "in 3m 12s" in line and "approved by <@U0BOB>" in line and "INC-7" in line

    denied = replace(ROLLBACK, state=State.DENIED, denied_by="U0BOB", deny_reason="use 40")
    assert "denied by <@U0BOB>: use 40" in summary_line(denied)
    failed = replace(ROLLBACK, state=State.FAILED, error="image pull <failed>")
    assert "failed: image pull &lt;failed&gt;" in summary_line(failed)
    assert "DRILL" in summary_line(replace(done, drill=True))


# --- modals ---------------------------------------------------------------------------

PREVIEW = RequestPreview(
    service="checkout",
    environment="production",
    strategy="instant",
    current_revision=42,
    current_image="registry/checkout:v1.5.0",
    target_revision=41,
    target_image="registry/checkout:v1.4.2",
    private_metadata='{"service":"checkout","to":41}',
    changes=(Change("ConfigMap checkout-config: TIMEOUT", "30", "10"),),
    warnings=("Managed by Argo CD: it may sync the old revision back.",),
    approvals_required=1,
    must_approve="<!subteam^S0SRE>",
    reason="errors",
    target_stable=True,
)


def test_request_modal_shows_the_plan_and_asks_for_a_reason() -> None:
    view = request_modal(PREVIEW)
    assert view["type"] == "modal"
    assert view["callback_id"] == action_ids.REQUEST_MODAL
    assert view["submit"]["text"] == "Roll back"
    assert view["private_metadata"] == PREVIEW.private_metadata
    assert len(view["title"]["text"]) <= 24
    assert_within_limits(view["blocks"], MAX_MODAL_BLOCKS)
    body = all_text(view["blocks"])
    for expected in ("revision 42", "revision 41", "known stable", "Argo CD", "TIMEOUT"):
        assert expected in body
    assert "<!subteam^S0SRE>" in body
    reason = next(b for b in view["blocks"] if b["type"] == "input")
    assert reason["block_id"] == action_ids.REASON_BLOCK
    assert reason["element"]["action_id"] == action_ids.REASON_INPUT
    assert reason["element"]["multiline"] is True
    assert reason["element"]["initial_value"] == "errors"
    assert reason["optional"] is False


def test_drill_modal_runs_a_drill() -> None:
    view = request_modal(replace(PREVIEW, drill=True, approvals_required=0))
    assert view["submit"]["text"] == "Run drill"
    assert "nothing is changed" in all_text(view["blocks"])
    assert "No approval needed" in all_text(view["blocks"])


def test_modal_metadata_over_the_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        request_modal(replace(PREVIEW, private_metadata="x" * 3001))


def test_deny_modal_requires_a_reason() -> None:
    view = deny_modal(12)
    assert view["callback_id"] == action_ids.DENY_MODAL
    assert read_button_value(view["private_metadata"]) == {"rollback_id": 12}
    reason = next(b for b in view["blocks"] if b["type"] == "input")
    assert reason["optional"] is False
    state = {action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: {"value": "  use 40 "}}}
    assert submitted_reason(state) == "use 40"
    assert submitted_reason({}) is None


# --- listings and help ------------------------------------------------------------------


def test_history_offers_roll_back_to_each_older_revision() -> None:
    rows = [
        RevisionRow(42, "registry/checkout:v1.5.0", timedelta(hours=1), current=True),
        RevisionRow(41, "registry/checkout:v1.4.2", timedelta(days=2), stable=True),
    ]
    blocks = history_blocks("checkout", rows, ["revisionHistoryLimit is 2; keep at least 3"])
    found = [b for b in blocks if "accessory" in b]
    assert len(found) == 1
    assert read_button_value(found[0]["accessory"]["value"]) == {
        "service": "checkout",
        "to_revision": 41,
    }
    body = all_text(blocks)
    assert "✅ stable" in body and "2d 0h ago" in body and "revisionHistoryLimit" in body


def test_history_of_many_revisions_stays_within_limits() -> None:
    rows = [RevisionRow(i, f"img:{i}", timedelta(days=i)) for i in range(100, 0, -1)]
    blocks = history_blocks("checkout", rows)
    assert_within_limits(blocks)
    assert "…and 60 more" in all_text(blocks)


def test_status_rows_and_empty() -> None:
    assert "No active rollbacks" in all_text(status_blocks([]))
    row = StatusRow(12, "checkout", "production", State.EXECUTING, "gradual", "U0ALICE")
    row = replace(row, step=1, steps=4, canary_percent=50, drill=True, incident_id=7)
    body = all_text(status_blocks([row]))
    for expected in ("R-12", "checkout", "rolling back", "step 1 of 4", "50%", "DRILL", "INC-7"):
        assert expected in body


def test_help_blocks_list_every_verb() -> None:
    blocks = help_blocks()
    assert_within_limits(blocks)
    body = all_text(blocks)
    for verb in VERBS:
        assert escape(verb.usage) in body and escape(verb.example) in body
    assert "<service>" not in body


def test_error_text_is_the_command_error_with_its_form() -> None:
    try:
        parse("chekout", services=["checkout"])
    except CommandError as err:
        text = error_text(err)
        assert text == f"⚠️ {err}"
        assert "Did you mean `checkout`?" in text
    else:
        pytest.fail("expected a CommandError")
    assert error_text("R-12 is done", usage="/rollback status") == (
        "⚠️ R-12 is done Usage: `/rollback status`"
    )


def test_values_and_durations() -> None:
    assert button_value(rollback_id=1, flag=None) == '{"rollback_id":1}'
    with pytest.raises(ValueError):
        button_value(reason="x" * 2000)
    with pytest.raises(ValueError):
        read_button_value("[1]")
    assert format_duration(timedelta(seconds=45)) == "45 s"
    assert format_duration(3725) == "1h 2m"


def test_action_ids_are_unique() -> None:
    names = [n for n in dir(action_ids) if n.isupper() and isinstance(getattr(action_ids, n), str)]
    values = [getattr(action_ids, n) for n in names]
    assert len(values) == len(set(values))
    assert set(values) >= action_ids.ALL_ACTIONS | action_ids.VIEW_CALLBACKS


# --- limits under any input ------------------------------------------------------------

# Markup characters grow when escaped (`<` becomes `&lt;`), so long runs of them probe the limits.
_TEXT = st.one_of(
    st.text(max_size=5000), st.text(alphabet="<>&`|*a \n", min_size=500, max_size=5000)
)


@settings(max_examples=60, deadline=None)
@given(
    service=st.text(min_size=1, max_size=300),
    reason=_TEXT,
    error=_TEXT,
    changes=st.lists(st.builds(Change, _TEXT, st.none() | _TEXT, st.none() | _TEXT), max_size=80),
    warnings=st.lists(_TEXT, max_size=30),
    approvers=st.lists(st.text(max_size=30), max_size=30),
)
def test_rollback_message_respects_slack_limits(
    service: str,
    reason: str,
    error: str,
    changes: list[Change],
    warnings: list[str],
    approvers: list[str],
) -> None:
    view = replace(
        ROLLBACK,
        service=service,
        reason=reason,
        error=error,
        changes=tuple(changes),
        warnings=tuple(warnings),
        approvers=tuple(approvers),
        actions=actions_for(State.EXECUTING, allowed_moves(State.EXECUTING)),
    )
    _, blocks = rollback_message(view)
    assert_within_limits(blocks, MAX_MESSAGE_BLOCKS)
    modal = request_modal(
        replace(PREVIEW, service=service, changes=tuple(changes), warnings=tuple(warnings))
    )
    assert_within_limits(modal["blocks"], MAX_MODAL_BLOCKS)


@settings(max_examples=60, deadline=None)
@given(summary=_TEXT, description=_TEXT, alertname=st.text(max_size=400), cluster=_TEXT)
def test_alert_message_respects_slack_limits(
    summary: str, description: str, alertname: str, cluster: str
) -> None:
    view = replace(
        ALERT, summary=summary, description=description, alertname=alertname, cluster=cluster
    )
    _, blocks = alert_message(view)
    assert_within_limits(blocks)


# --- the edge: slack_sdk models to dicts ------------------------------------------------


def test_clip_ends_in_a_visible_ellipsis() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab…"


def test_fallback_text_is_clipped_to_slacks_message_limit() -> None:
    text, _ = suggestion_message(service="checkout", group_id=3, text="x" * 50_000)
    assert len(text) == MAX_MESSAGE_TEXT and text.endswith("…")


def test_a_model_slack_sdk_refuses_is_a_builder_error() -> None:
    with pytest.raises(InvalidPayload, match="HeaderBlock"):
        message("fallback", [HeaderBlock(text="x" * 151)])


def test_fit_keeps_the_buttons_and_counts_what_it_dropped() -> None:
    many = [section(f"line {i}") for i in range(60)]
    buttons_block = actions("rollback.1", [button("Abort", action_ids.ABORT, "{}")])
    _, blocks = message("fallback", [*many, *buttons_block])
    assert len(blocks) == MAX_MESSAGE_BLOCKS
    assert blocks[-1]["type"] == "actions" and blocks[-1]["block_id"] == "rollback.1.0"
    assert blocks[-2]["elements"][0]["text"] == "…and 12 more"


def test_notice_modals_cut_the_title_to_fit() -> None:
    view = loading_modal("Postmortem INC-123456789012345")
    assert view["type"] == "modal"
    assert len(view["title"]["text"]) == 24 and view["title"]["text"].endswith("…")
    assert view["close"]["text"] == "Close"
    assert message_modal("Error", ":x: no")["blocks"][0]["text"]["text"] == ":x: no"
