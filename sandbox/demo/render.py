"""Slack messages and modals as terminal text: Block Kit to lines, mrkdwn to plain text.

Only the block types the bot posts are rendered; the point is that a reader of the demo
sees roughly what a Slack user would, not a faithful Slack client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def message_lines(message: dict[str, Any]) -> list[str]:
    """A Slack message as a reader sees it: its blocks, or its text when it has none."""
    blocks = message.get("blocks") or []
    return blocks_lines(blocks) if blocks else [plain(message.get("text", ""))]


def view_lines(view: dict[str, Any]) -> list[str]:
    title = view.get("title", {}).get("text", "")
    buttons = [view[k]["text"] for k in ("submit", "close") if view.get(k)]
    return [f"== {title} ==", *blocks_lines(view.get("blocks", [])), _buttons_line(buttons)]


def blocks_lines(blocks: Iterable[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("header", "section") and block.get("text"):
            lines += plain(block["text"]["text"]).splitlines()
        if kind == "section":
            lines += [_field(f["text"]) for f in block.get("fields", [])]
        elif kind == "context":
            lines.append(" · ".join(plain(e.get("text", "")) for e in block.get("elements", [])))
        elif kind == "actions":
            lines.append(_buttons_line(b["text"]["text"] for b in buttons({"blocks": [block]})))
        elif kind == "input":
            lines.append(f"{block.get('label', {}).get('text', '')}: [ ______ ]")
        elif kind == "divider":
            lines.append("---")
    return lines


_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_MENTION = re.compile(r"<[@#](\w+)>")
_SUBTEAM = re.compile(r"<!subteam\^(\w+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def plain(mrkdwn: str) -> str:
    """Slack mrkdwn as plain terminal text: links and dates show their fallback text."""
    text = _LINK.sub(r"\2", mrkdwn)
    text = _MENTION.sub(r"@\1", text)
    text = _SUBTEAM.sub(r"@\1", text)
    return _BOLD.sub(r"\1", text)


def _field(mrkdwn: str) -> str:
    label, _, value = plain(mrkdwn).partition("\n")
    return f"{label}: {value}" if value else label


def _buttons_line(texts: Iterable[str]) -> str:
    return " ".join(f"[{t}]" for t in texts)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]
