"""What a person is told after adding a note: the note as stored, or why not (mrkdwn).

The note is people's text and is escaped; the reasons are the bot's own mrkdwn (the
policy names who may act with mentions), as in every other refusal.
"""

from __future__ import annotations

from rollback_bot.ids import format_incident_id
from rollback_bot.incidents.notes import NoteResult
from rollback_bot.slack.ui.mrkdwn import escape

#: How much of the note the confirmation repeats.
SHOWN = 300


def note_reply(result: NoteResult) -> str:
    name = format_incident_id(result.incident_id) if result.incident_id is not None else ""
    if result.outcome == "added":
        return f"Added to the timeline of {name}: {escape(result.text, SHOWN)}"
    if result.outcome == "refused":
        return f"Refused: {result.why}. Nothing was added."
    if result.outcome == "ambiguous":
        listed = ", ".join(f"`{format_incident_id(i)}`" for i in result.candidates)
        return (
            f"Which incident? {result.why} ({listed}). "
            "Use `/rollback note <incident> <text>`; nothing was added."
        )
    if result.outcome == "no_incident":
        return (
            f"Nothing was added: {result.why}. Use `/rollback note <incident> <text>` to name one."
        )
    return f"Nothing was added: {result.why}."
