"""``/rollback status``: the open incidents, under the active rollbacks, one line each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block

from rollback_bot.slack.commands import format_incident_id
from rollback_bot.slack.ui.kit import block_dicts, context, header, section
from rollback_bot.slack.ui.limits import MAX_LISTED_ROWS
from rollback_bot.slack.ui.mrkdwn import escape

if TYPE_CHECKING:
    from rollback_bot.incidents.postmortem_load import IncidentSummary


def _line(row: IncidentSummary) -> str:
    from rollback_bot.incidents.postmortem import human_duration  # loaded on first use

    return " · ".join(
        [
            f"*{format_incident_id(row.id)}*",
            escape(row.service),
            escape(row.state),
            f"opened {row.opened_at.strftime('%Y-%m-%d %H:%M')} UTC",
            f"TTA {human_duration(row.time_to_acknowledge_seconds)}",
            f"TTM {human_duration(row.time_to_mitigate_seconds)}",
        ]
    )


def open_incident_blocks(rows: Sequence[IncidentSummary]) -> list[dict[str, Any]]:
    """The open (not yet resolved) incidents, newest first."""
    if not rows:
        return block_dicts([context("No open incidents.")])
    blocks: list[Block] = [header(f"Open incidents ({len(rows)})")]
    blocks.extend(section(_line(row)) for row in rows[:MAX_LISTED_ROWS])
    if len(rows) > MAX_LISTED_ROWS:
        blocks.append(context(f"…and {len(rows) - MAX_LISTED_ROWS} more"))
    return block_dicts(blocks)
