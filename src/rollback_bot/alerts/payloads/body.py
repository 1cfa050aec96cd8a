"""The request body as JSON, refused with a 4xx reason for what would otherwise be a 5xx.

Beyond what the JSON grammar refuses: nesting deeper than ``MAX_DEPTH`` (the decoder would
run out of stack), integers beyond 64 bits, ``NaN`` and ``Infinity``, and lone surrogates
(text that is not Unicode and cannot be stored or hashed). NUL characters are removed: no
database keeps them. Alertmanager retries a 5xx forever, so a broken body must never get one.
"""

from __future__ import annotations

import json

from rollback_bot.alerts.model import AlertPayloadError

MAX_DEPTH = 32  # no sender nests deeper than a handful of levels
MAX_INT = 2**63  # beyond a 64-bit integer a number is no label, value or timestamp

# A lone surrogate or a NUL can only come from a \u escape (the UTF-8 decoder refuses
# encoded surrogates, the JSON decoder raw control characters), so a body without one
# needs no look at its text: only depth and integers are checked, without building the
# path of every value. Anything found takes the full walk, which words the refusal.
_ESCAPE = "\\u"


def _no_constant(name: str) -> object:
    raise AlertPayloadError("(body)", f"{name} is not a JSON number")


def decode_body(data: bytes) -> object:
    """The decoded body, or ``AlertPayloadError`` saying why it cannot be one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AlertPayloadError("(body)", f"not UTF-8 at byte {exc.start}") from None
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise AlertPayloadError("(body)", f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise AlertPayloadError("(body)", f"not JSON: {exc.msg} at {exc.pos}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise AlertPayloadError("(body)", f"not usable JSON: {exc}") from None
    if _ESCAPE not in text and _plain(raw, MAX_DEPTH):
        return raw
    return _checked(raw, "(body)", 0)


def _plain(root: object, limit: int) -> bool:
    """Whether no value sits deeper than ``limit`` and every integer fits in 64 bits."""
    pending: list[tuple[object, int]] = [(root, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth >= limit and node:
                return False
            children = node.values() if isinstance(node, dict) else node
            pending.extend((child, depth + 1) for child in children)
        elif type(node) is int and not -MAX_INT < node < MAX_INT:
            return False
    return True


def _checked(node: object, path: str, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise AlertPayloadError(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, str):
        return _text(node, path)
    if isinstance(node, bool) or node is None or isinstance(node, float):
        return node
    if isinstance(node, int):
        if not -MAX_INT < node < MAX_INT:
            raise AlertPayloadError(path, f"integer too large ({len(str(abs(node)))} digits)")
        return node
    if isinstance(node, list):
        return [_checked(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node)]
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            name = _text(key, f"{path}.(key)")
            out[name] = _checked(value, f"{path}.{name}" if path != "(body)" else name, depth + 1)
        return out
    return node


def _text(value: str, path: str) -> str:
    for i, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            raise AlertPayloadError(
                path, f"not valid Unicode: lone surrogate U+{ord(char):04X} at {i}"
            )
    return value.replace("\x00", "")
