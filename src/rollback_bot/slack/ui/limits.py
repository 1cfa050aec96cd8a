"""Slack's size limits that ``slack_sdk.models`` does not encode, and the one way text is cut.

``slack_sdk`` knows most limits (a section's text, a header, a button, a
confirm dialog, a modal's title and metadata) and checks them when a model
is turned into a dict; the builders read those from the model classes
(``HeaderBlock.text_max_length``). The ones below it does not know, so they
are declared here, once. Text over a limit is cut with ``clip``, never
refused: a long diff must not cost the message in the middle of an incident.
"""

from __future__ import annotations

from slack_sdk.models.views import View

MAX_MESSAGE_TEXT = 40_000  # a message's fallback ``text``; Slack truncates or refuses beyond it
MAX_MESSAGE_BLOCKS = 50  # blocks in one message (a modal's limit is on ``View``)
MAX_MODAL_BLOCKS = View.blocks_max_length  # named beside its message twin for ``fit``
MAX_TEXT = 3000  # any mrkdwn text object, e.g. a context element
MAX_FIELD = 2000  # one field of a section

# Ours, not Slack's: a reason long enough to explain, short enough to read in a thread;
# listing rows before "…and N more", enough for any real revisionHistoryLimit.
MAX_REASON = 1000
MAX_LISTED_ROWS = 40


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in a visible "…" when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
