"""Rollback and incident ids as people type them (``R-12``, ``r12``, ``#12``, ``12``)."""

from __future__ import annotations

import re

_ROLLBACK_ID = re.compile(r"(?:r-?|#)?([0-9]{1,9})", re.IGNORECASE)
_INCIDENT_ID = re.compile(r"(?:inc-?|#)?([0-9]{1,9})", re.IGNORECASE)


def format_rollback_id(rollback_id: int) -> str:
    return f"R-{rollback_id}"


def format_incident_id(incident_id: int) -> str:
    return f"INC-{incident_id}"


def parse_rollback_id(token: str) -> int | None:
    """``R-12``, ``r12``, ``#12``, ``12`` -> 12; anything else -> None."""
    match = _ROLLBACK_ID.fullmatch(token.strip())
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def parse_incident_id(token: str) -> int | None:
    """``INC-7``, ``inc7``, ``#7``, ``7`` -> 7; anything else -> None."""
    match = _INCIDENT_ID.fullmatch(token.strip())
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None
