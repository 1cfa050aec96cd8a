"""The body check's quick screen answers as the full walk does, for clean and hostile bodies."""

from __future__ import annotations

import json

import pytest

from rollback_bot.alerts.model import AlertPayloadError
from rollback_bot.alerts.payloads.body import MAX_DEPTH, _checked, decode_body


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


BODIES = [
    '{"alerts": [{"labels": {"a": "b"}, "value": 1.5, "n": 12}]}',
    '"just text"',
    "17",
    '{"k": "a\\u0000b"}',
    '{"k\\u0000": 1}',
    '{"k": "\\ud800"}',
    '{"k": "\\uD83D\\uDE00"}',
    '{"k": "\\\\ud800 is only text"}',
    '{"n": 9223372036854775807}',
    '{"n": 9223372036854775808}',
    '{"n": -9223372036854775808}',
    '{"digits": "12345678901234567890"}',
    nested(MAX_DEPTH),
    nested(MAX_DEPTH + 1),
    "[" * MAX_DEPTH + "[]" + "]" * MAX_DEPTH,
    "[" * MAX_DEPTH + "{}" + "]" * MAX_DEPTH,
    '{"k": "' + "[{" * (MAX_DEPTH + 5) + '"}',
    '{"k": "a \\" [[[[ \\\\", "l": ' + nested(MAX_DEPTH - 1) + "}",
    '{"k": "a \\" [[[[ \\\\", "l": ' + nested(MAX_DEPTH) + "}",
    '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
]


def outcome(run: object) -> tuple[str, object]:
    try:
        return "ok", run()  # type: ignore[operator]
    except AlertPayloadError as exc:
        return "refused", str(exc)


@pytest.mark.parametrize("text", BODIES)
def test_the_screen_agrees_with_the_full_walk(text: str) -> None:
    full = outcome(lambda: _checked(json.loads(text), "(body)", 0))
    assert outcome(lambda: decode_body(text.encode())) == full
