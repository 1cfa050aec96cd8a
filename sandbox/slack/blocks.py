"""The subset of Slack's Block Kit validation that catches real bot bugs.

Slack rejects a whole message when a block is malformed; a stand-in that
accepted anything would let such messages pass every test and fail in
production. Only structural rules and the limits bots commonly hit are checked.
"""

from __future__ import annotations

from typing import Any

KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "rich_text",
        "section",
        "video",
        "markdown",
    }
)
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_ACTION_ELEMENTS = 25


class InvalidBlocks(ValueError):
    """A block list Slack would answer with `invalid_blocks`."""


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> None:
    if not isinstance(blocks, list):
        raise InvalidBlocks("blocks must be a list")
    if len(blocks) > max_blocks:
        raise InvalidBlocks(f"no more than {max_blocks} blocks")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCK_TYPES:
            raise InvalidBlocks(f"block {index}: unknown or missing type")
        _check_unique(block.get("block_id"), block_ids, f"block {index}: duplicate block_id")
        _check_block(index, block)
        for element in _interactive_elements(block):
            _check_unique(
                element.get("action_id"), action_ids, f"block {index}: duplicate action_id"
            )


def _check_unique(value: Any, seen: set[str], message: str) -> None:
    if value is None:
        return
    if value in seen:
        raise InvalidBlocks(message)
    seen.add(value)


def _check_block(index: int, block: dict[str, Any]) -> None:
    kind = block["type"]
    if kind == "section":
        text = block.get("text")
        if text is None and not block.get("fields"):
            raise InvalidBlocks(f"block {index}: section needs text or fields")
        if text is not None:
            _check_text(index, text, MAX_SECTION_TEXT)
    elif kind == "header":
        text = block.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            raise InvalidBlocks(f"block {index}: header text must be plain_text")
        _check_text(index, text, MAX_HEADER_TEXT)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            raise InvalidBlocks(f"block {index}: actions needs elements")
        if len(elements) > MAX_ACTION_ELEMENTS:
            raise InvalidBlocks(f"block {index}: too many elements")
        for element in elements:
            _check_element(index, element)


def _check_text(index: int, text: Any, limit: int) -> None:
    if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
        raise InvalidBlocks(f"block {index}: text object needs type plain_text or mrkdwn")
    value = text.get("text")
    if not isinstance(value, str) or not value:
        raise InvalidBlocks(f"block {index}: empty text")
    if len(value) > limit:
        raise InvalidBlocks(f"block {index}: text longer than {limit}")


def _check_element(index: int, element: Any) -> None:
    if not isinstance(element, dict) or "type" not in element:
        raise InvalidBlocks(f"block {index}: element without type")
    if element["type"] == "button":
        text = element.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            raise InvalidBlocks(f"block {index}: button text must be plain_text")
        _check_text(index, text, MAX_BUTTON_TEXT)


def _interactive_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    elements = [e for e in block.get("elements") or [] if isinstance(e, dict)]
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            elements.append(block[key])
    return elements


def buttons(blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Every button in a block list, each with the `block_id` of the block holding it."""
    found = []
    for block in blocks or []:
        for element in _interactive_elements(block):
            if element.get("type") == "button":
                found.append({**element, "block_id": block.get("block_id")})
    return found
