"""How rollbacks and incidents are named to people, and read back from what they type.

One place, so that a message, a command reply, a postmortem and the CLI all say ``R-12``
and ``INC-7``, and every command accepts the same shorthands: ``r12``, ``R12``, ``#12``
and ``12`` for a rollback; ``inc7``, ``INC7``, ``#7`` and ``7`` for an incident.
Numbers are database ids, so zero and anything past nine digits are never an id.
"""

from __future__ import annotations

import re

ROLLBACK_PREFIX = "R-"
INCIDENT_PREFIX = "INC-"

_ROLLBACK_ID = re.compile(r"(?:r-?|#)?([0-9]{1,9})", re.IGNORECASE)
_INCIDENT_ID = re.compile(r"(?:inc-?|#)?([0-9]{1,9})", re.IGNORECASE)


def format_rollback_id(rollback_id: int) -> str:
    """12 -> ``R-12``."""
    return f"{ROLLBACK_PREFIX}{rollback_id}"


def format_incident_id(incident_id: int) -> str:
    """7 -> ``INC-7``."""
    return f"{INCIDENT_PREFIX}{incident_id}"


def parse_rollback_id(token: str) -> int | None:
    """``R-12``, ``r12``, ``#12``, ``12`` -> 12; anything else -> None."""
    return _number(_ROLLBACK_ID, token)


def parse_incident_id(token: str) -> int | None:
    """``INC-7``, ``inc7``, ``#7``, ``7`` -> 7; anything else -> None."""
    return _number(_INCIDENT_ID, token)


def _number(pattern: re.Pattern[str], token: str) -> int | None:
    match = pattern.fullmatch(token.strip())
    number = int(match.group(1)) if match else 0
    return number if number > 0 else None


__all__ = [
    "INCIDENT_PREFIX",
    "ROLLBACK_PREFIX",
    "format_incident_id",
    "format_rollback_id",
    "parse_incident_id",
    "parse_rollback_id",
]
