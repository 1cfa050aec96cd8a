"""No outside text can mention, page, link or hide itself in Slack, on any surface.

Every builder that shows text from alerts, people or the cluster is fed hostile
strings (mentions, disguised links, markup characters, control and bidi
characters, lone surrogates) in every outside field. What reaches Slack may
hold only the markup the bot writes itself: links to URLs that passed
``safe_url`` with the bot's own labels, its date tokens, and the approvers the
catalog names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollback_bot.rollbacks.lifecycle import State, allowed_moves
from rollback_bot.slack.ui.alert_card import alert_message, suggestion_message
from rollback_bot.slack.ui.limits import MAX_MESSAGE_TEXT
from rollback_bot.slack.ui.mrkdwn import clean, escape, link, safe_url
from rollback_bot.slack.ui.request_modal import request_modal
from rollback_bot.slack.ui.rollback_message import rollback_message
from rollback_bot.slack.ui.thread import summary_line, transition_line
from rollback_bot.slack.ui.views import Change, actions_for
from tests.unit.test_blocks import ALERT, PREVIEW, ROLLBACK, assert_within_limits

HOSTILE = [
    "<!channel>",
    "<!everyone>",
    "<!here>",
    "<!subteam^S0EVIL>",
    "<@U0EVE>",
    "<@W0EVE|eve>",
    "<#C0ALERTS>",
    "<https://evil.example|click me>",
    "<http://evil.example>",
    "&",
    "<",
    ">",
    "&lt;",
    "|",
    "`",
    "*",
    "\u202e",
    "\u2066",
    "\x00",
    "\x1b[31m",
    "\ud800",
    "\udfff",
    "https://ok.example/a?b=1&c=<2>",
]
_OUTSIDE = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)), max_size=12).map(
    "".join
)
_URL = st.one_of(
    _OUTSIDE,
    st.sampled_from(
        [
            "https://runbooks.example/x",
            "javascript:alert(1)",
            "https://ok.example/a b",
            "https://ok.example/<!channel>",
            "ftp://files.example/x",
            "https://grafana.example/d?var=a|b&x=1",
            "https://evil.example|click me",
        ]
    ),
)

_LABELS = "Runbook|Dashboard|Panel|Silence|Source"
# The markup the bot writes itself; anything else that looks like markup came from outside.
_OWN = re.compile(
    rf"<https?://[^\s<>|]+\|(?:{_LABELS})>"
    r"|<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[^<>]*>"
    # the requester, the denier and the approvers the fixtures' policy names
    r"|<@U0ALICE>|<@U0CAROL>|<@U0BOB>|<!subteam\^S0SRE>"
)
_FORBIDDEN = ("<!", "<@", "<#", "<http")
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def strings(payload: Any) -> tuple[list[str], list[str]]:
    """(mrkdwn strings, plain strings): Slack reads markup only in the first kind.

    A fallback ``text`` and every mrkdwn object are read as markup; ``plain_text``
    objects and a text input's ``initial_value`` are shown as typed.
    """
    marked: list[str] = []
    plain: list[str] = []

    def walk(node: object, out: list[str]) -> None:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            kind = plain if node.get("type") == "plain_text" else out
            for key, value in node.items():
                if key == "initial_value":
                    walk(value, plain)
                elif key not in ("value", "action_id", "block_id", "private_metadata", "type"):
                    walk(value, kind)
        elif isinstance(node, list):
            for item in node:
                walk(item, out)

    walk(payload, marked)
    return marked, plain


def assert_only_own_markup(payload: Any, urls: Sequence[str | None] = ()) -> None:
    allowed = {
        u.replace("&", "&amp;").replace("|", "%7C") for u in urls if u and safe_url(u) is not None
    }
    marked, plain = strings(payload)
    for text in plain:
        assert not _HIDDEN.search(text), text
    for text in marked:
        for token in _OWN.finditer(text):
            if token.group().startswith("<http"):
                assert token.group()[1:].rsplit("|", 1)[0] in allowed, token.group()
        rest = _OWN.sub("", text)
        for seq in _FORBIDDEN:
            assert seq not in rest, (seq, text)
        assert not _HIDDEN.search(text), text
    # What is sent is JSON, and it must be encodable as UTF-8 (no lone surrogate).
    json.dumps(payload, ensure_ascii=False).encode("utf-8")


@settings(max_examples=80, deadline=None)
@given(
    alertname=_OUTSIDE,
    severity=_OUTSIDE,
    cluster=_OUTSIDE,
    summary=_OUTSIDE,
    description=_OUTSIDE,
    service=_OUTSIDE,
    urls=st.lists(_URL, min_size=5, max_size=5),
    resolved=st.booleans(),
)
def test_alert_card_carries_no_outside_markup(
    alertname: str,
    severity: str,
    cluster: str,
    summary: str,
    description: str,
    service: str,
    urls: list[str],
    resolved: bool,
) -> None:
    view = replace(
        ALERT,
        alertname=alertname,
        severity=severity,
        cluster=cluster,
        summary=summary,
        description=description,
        service=service or None,
        status="resolved" if resolved else "firing",
        runbook_url=urls[0],
        dashboard_url=urls[1],
        panel_url=urls[2],
        silence_url=urls[3],
        generator_url=urls[4],
    )
    text, blocks = alert_message(view)
    assert_only_own_markup([text, blocks], list(urls))
    assert len(text) <= MAX_MESSAGE_TEXT
    assert_within_limits(blocks)


@settings(max_examples=60, deadline=None)
@given(
    reason=_OUTSIDE,
    deny_reason=_OUTSIDE,
    error=_OUTSIDE,
    trigger=_OUTSIDE,
    flag=st.none() | _OUTSIDE,
    changes=st.lists(st.builds(Change, _OUTSIDE, st.none() | _OUTSIDE, st.none() | _OUTSIDE)),
    warnings=st.lists(_OUTSIDE, max_size=5),
    state=st.sampled_from(list(State)),
    event=_OUTSIDE,
)
def test_rollback_surfaces_carry_no_outside_markup(
    reason: str,
    deny_reason: str,
    error: str,
    trigger: str,
    flag: str | None,
    changes: list[Change],
    warnings: list[str],
    state: State,
    event: str,
) -> None:
    # Request and deny reasons, errors, ConfigMap flag values and their diffs.
    view = replace(
        ROLLBACK,
        state=state,
        reason=reason,
        deny_reason=deny_reason,
        denied_by="U0CAROL" if state is State.DENIED else None,
        error=error,
        trigger=trigger,
        flag=flag,
        strategy="flag" if flag else "instant",
        changes=tuple(changes),
        warnings=tuple(warnings),
        actions=actions_for(state, allowed_moves(state)),
    )
    text, blocks = rollback_message(view)
    lines = [transition_line(view, State.REQUESTED, State.APPROVED), summary_line(view)]
    assert_only_own_markup([text, blocks, *lines])
    modal = request_modal(
        replace(PREVIEW, reason=reason, changes=tuple(changes), warnings=tuple(warnings))
    )
    assert_only_own_markup(modal)


@settings(max_examples=60, deadline=None)
@given(text=_OUTSIDE)
def test_a_suggestion_carries_no_outside_markup(text: str) -> None:
    fallback, blocks = suggestion_message(service="checkout", group_id=3, text=text)
    assert_only_own_markup([fallback, blocks])


def test_a_100_kb_alert_name_still_fits_a_message() -> None:
    view = replace(ALERT, alertname="<!channel>" * 10_000, summary="x" * 100_000)
    text, blocks = alert_message(view)
    assert len(text) <= MAX_MESSAGE_TEXT and "…" in text
    assert_within_limits(blocks)
    assert_only_own_markup([text, blocks], [view.runbook_url, view.dashboard_url])


def test_escape_is_the_one_way_outside_text_enters() -> None:
    assert escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"
    assert escape("safe\u202etxt.exe") == "safe[U+202E]txt.exe"
    assert escape("a\x00b\x07c\nd") == "abc\nd"
    assert escape("<" * 10, 8) == "&lt;…"  # never cut inside an entity
    assert clean("\ud800ok") == "ok"


def test_links_only_from_http_urls_with_a_plain_label() -> None:
    assert link("https://runbooks.example/x?a=1&b=2", "Runbook") == (
        "<https://runbooks.example/x?a=1&amp;b=2|Runbook>"
    )
    assert link("javascript:alert(1)", "Runbook") == "Runbook (not a valid link)"
    assert link("https://evil.example|click me", "Runbook") == "Runbook (not a valid link)"
    assert link("https://x.example/<!channel>", "Runbook") == "Runbook (not a valid link)"
    assert link("https://ok.example/", "<!here>") == "<https://ok.example/|&lt;!here&gt;>"
    assert safe_url("https://") is None and safe_url(None) is None
