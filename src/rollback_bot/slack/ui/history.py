"""``/rollback history``: the revisions of a service, with a "Roll back to" on each older one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from rollback_bot.incidents.queries import RevisionRow
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.kit import block_dicts, button, context, header, section
from rollback_bot.slack.ui.limits import MAX_LISTED_ROWS, clip
from rollback_bot.slack.ui.mrkdwn import code, escape, format_duration
from rollback_bot.slack.ui.values import button_value


def _row(service: str, row: RevisionRow) -> Block:
    parts = [f"*{row.number}*", code(row.image) if row.image else "image unknown"]
    if row.age is not None:
        parts.append(f"{format_duration(row.age)} ago")
    if row.bad:
        parts.append("⛔ known bad")
    elif row.stable:
        parts.append("✅ stable")
    if row.current:
        parts.append("▶️ running")
    if row.target:
        parts.append("⏪ rollback target")
    if row.known:
        parts.append(escape(clip(row.known, 300)))
    roll_back = (
        None
        if row.current or row.bad
        else button(
            f"Roll back to {row.number}",
            action_ids.ROLL_BACK,
            button_value(service=service, to_revision=row.number),
        )
    )
    return section(" · ".join(parts), accessory=roll_back)


def history_blocks(
    service: str, rows: Sequence[RevisionRow], warnings: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Revisions of ``service``, newest first as given, as the blocks of an ephemeral reply."""
    blocks: list[Block] = [header(f"Revisions of {service}")]
    if warnings:
        blocks.append(context(*(f"⚠️ {escape(clip(w, 500))}" for w in warnings)))
    if not rows:
        blocks.append(section(f"No revisions of *{escape(service)}* found."))
        return block_dicts(blocks)
    blocks.extend(_row(service, row) for row in rows[:MAX_LISTED_ROWS])
    if len(rows) > MAX_LISTED_ROWS:
        blocks.append(context(f"…and {len(rows) - MAX_LISTED_ROWS} more"))
    return block_dicts(blocks)
