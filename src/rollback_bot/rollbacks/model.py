"""What the rollback use cases take and answer: a request, a reply, where effects go.

Kept apart from the service so that listeners, automation and the runner can speak of
requests and replies without the service's transactions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rollback_bot.rollbacks.drift import Seen
from rollback_bot.rollbacks.lifecycle import Decision
from rollback_bot.storage.models import Rollback

BOT = "rollback-bot"


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What the person who acted is told (ephemeral); ``ok`` False means refused.

    Built through ``Reply.success`` or ``Reply.refused`` so a call site reads what it
    answers, never a bare ``True``/``False``.
    """

    ok: bool
    text: str
    rollback_id: int | None = None

    @classmethod
    def success(cls, text: str, *, rollback_id: int | None = None) -> Reply:
        return cls(ok=True, text=text, rollback_id=rollback_id)

    @classmethod
    def refused(cls, text: str, *, rollback_id: int | None = None) -> Reply:
        return cls(ok=False, text=text, rollback_id=rollback_id)


@dataclass(frozen=True)
class RequestSpec:
    service: str
    user: str
    to_revision: int | str | None = None
    strategy: str | None = None
    reason: str = ""
    drill: bool = False
    automatic: bool = False
    trigger: str | None = None  # the rule that started an automatic rollback
    countdown_seconds: float = 60
    flag: str | None = None  # strategy "flag": which flag
    flag_restore: str | None = None  # undo: the value to put back (None: turn it off)
    force_bad: bool = False  # the person overrides "this revision is known bad"
    seen: Seen | None = None  # the running release the person saw in the form


class EffectSink(Protocol):
    """Where decisions' effects go: the runner carries them out."""

    def carry_out(self, rollback: Rollback, decision: Decision) -> None: ...
