"""What the bot's buttons and modals carry back to it, written and read in one place.

A button's ``value`` (and the deny modal's ``private_metadata``) is a set of
ids as compact JSON; the listeners read it back with ``read_button_value``.
The reason typed into a modal is read with ``submitted_reason``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import ButtonElement

from rollback_bot.slack.ui import action_ids


def button_value(**ids: int | str | None) -> str:
    """The ``value`` of a button: its ids as compact JSON (None entries dropped).

    Raises ``ValueError`` when it would not fit a button, since cutting it
    would lose the ids the click must carry.
    """
    value = json.dumps(
        {k: v for k, v in ids.items() if v is not None}, separators=(",", ":"), sort_keys=True
    )
    if len(value) > ButtonElement.value_max_length:
        raise ValueError(f"button value longer than {ButtonElement.value_max_length} characters")
    return value


def read_button_value(value: str) -> dict[str, Any]:
    """The ids a button carried; ``ValueError`` when the value is not one of ours."""
    try:
        data = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        raise ValueError(f"not a button value: {value[:50]!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a button value: {value[:50]!r}")
    return data


def submitted_reason(state_values: Mapping[str, Any]) -> str | None:
    """The reason typed into either modal, from ``view["state"]["values"]``."""
    block = state_values.get(action_ids.REASON_BLOCK) or {}
    value = (block.get(action_ids.REASON_INPUT) or {}).get("value")
    return (value.strip() or None) if isinstance(value, str) else None


def submitted_force_bad(state_values: Mapping[str, Any]) -> bool:
    """Whether the known-bad override was ticked in the request modal."""
    block = state_values.get(action_ids.FORCE_BAD_BLOCK) or {}
    chosen = (block.get(action_ids.FORCE_BAD_INPUT) or {}).get("selected_options") or []
    return any(isinstance(o, dict) and o.get("value") == "force_bad" for o in chosen)
