"""``/rollback status``: the active rollbacks and their step, one line each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from rollback_bot.incidents.queries import StatusRow
from rollback_bot.slack.commands import format_incident_id, format_rollback_id
from rollback_bot.slack.ui.kit import block_dicts, context, header, section
from rollback_bot.slack.ui.limits import MAX_LISTED_ROWS
from rollback_bot.slack.ui.mrkdwn import escape, format_duration, who
from rollback_bot.slack.ui.rollback_wording import state_label


def _line(row: StatusRow) -> str:
    parts = [
        f"*{format_rollback_id(row.rollback_id)}*",
        escape(f"{row.service} ({row.environment})"),
        state_label(row.state),
    ]
    if row.drill:
        parts.insert(0, "🧪 DRILL")
    if row.to_revision is not None:
        parts.append(f"to revision {row.to_revision}")
    if row.step is not None and row.steps:
        step = f"step {row.step} of {row.steps}"
        if row.canary_percent is not None:
            step += f", canary at {row.canary_percent}%"
        parts.append(step)
    parts.append(escape(row.strategy))
    parts.append("automatic" if row.automatic else f"requested by {who(row.requested_by)}")
    if row.age is not None:
        parts.append(f"started {format_duration(row.age)} ago")
    if row.incident_id:
        parts.append(format_incident_id(row.incident_id))
    return " · ".join(parts)


def status_blocks(rows: Sequence[StatusRow]) -> list[dict[str, Any]]:
    """Active rollbacks, as the blocks of an ephemeral reply."""
    if not rows:
        return block_dicts([section("No active rollbacks.")])
    blocks: list[Block] = [header(f"Active rollbacks ({len(rows)})")]
    blocks.extend(section(_line(row)) for row in rows[:MAX_LISTED_ROWS])
    if len(rows) > MAX_LISTED_ROWS:
        blocks.append(context(f"…and {len(rows) - MAX_LISTED_ROWS} more"))
    return block_dicts(blocks)
