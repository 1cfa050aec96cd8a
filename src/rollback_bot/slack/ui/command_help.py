"""``/rollback help``, and the reply when a command cannot be done: both point to the right form."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from rollback_bot.slack.commands import HELP_TEXT, VERBS, CommandError
from rollback_bot.slack.ui.kit import block_dicts, context, header, section
from rollback_bot.slack.ui.limits import MAX_TEXT, clip
from rollback_bot.slack.ui.mrkdwn import code, escape


def help_blocks() -> list[dict[str, Any]]:
    """Every verb with its form and an example; the text twin is ``commands.HELP_TEXT``."""
    blocks: list[Block] = [header("/rollback commands")]
    blocks.extend(
        section(f"{code(verb.usage)}\n{escape(verb.summary)}\nExample: {code(verb.example)}")
        for verb in VERBS
    )
    blocks.append(context(*HELP_TEXT.splitlines()[-2:]))
    return block_dicts(blocks)


def error_text(error: str | BaseException, *, usage: str | None = None) -> str:
    """The ephemeral reply for something that could not be done, with the right form."""
    if isinstance(error, CommandError):
        body = str(error)
    else:
        body = str(error) or type(error).__name__
        if usage:
            body += f" Usage: {code(usage)}"
    return clip(f"⚠️ {body}", MAX_TEXT)
