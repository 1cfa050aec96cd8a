"""Notes from people on an incident's timeline: what they knew, in their words.

Two ways in: ``/rollback note INC-7 <text>`` and the "Add to incident timeline" message
shortcut (the message's text, author and permalink become the note). Either way the note
is one ``note.added`` entry with who added it; anyone who could request or approve for
the incident's service may add one (``policies.may_add_note``). A refusal is answered and
recorded (``note.refused``, without the text). Secret-looking values are redacted by the
timeline before the note is stored.

The incident of a message is found from where it was posted: a message in (or on) the
thread of one of the incident's alert or rollback messages belongs to that incident;
otherwise the one open incident of the services whose channel it is. None, or more than
one, and the person is asked to use the command with an incident id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.ids import format_incident_id
from rollback_bot.rollbacks.policies import Principal, may_add_note
from rollback_bot.storage.uow import UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)

#: The longest note kept (Slack messages go to 40,000 characters; a note is a paragraph).
MAX_NOTE = 4000

Outcome = Literal["added", "refused", "no_incident", "ambiguous", "empty"]


@dataclass(frozen=True)
class NoteResult:
    """What happened to a note; ``slack.ui.notes`` turns it into the person's answer."""

    outcome: Outcome
    incident_id: int | None = None
    text: str = ""  # the note as stored (redacted); "added" only
    why: str = ""  # a refusal's reason, or why no incident could be chosen
    candidates: tuple[int, ...] = ()  # "ambiguous": the incidents it could be

    @property
    def ok(self) -> bool:
        return self.outcome == "added"


@dataclass(frozen=True)
class SlackMessage:
    """The message a shortcut was used on, as Slack's payload gives it."""

    channel: str
    ts: str
    text: str
    author: str | None = None
    thread_ts: str | None = None


Permalink = Callable[[str, str], str | None]  # (channel, message ts) -> URL


class IncidentNotes:
    def __init__(
        self,
        *,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        principal: Callable[[Service, str], Principal],
        permalink: Permalink,
    ) -> None:
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._principal = principal
        self._permalink = permalink

    def add(self, incident_id: int, *, user: str, text: str) -> NoteResult:
        """``/rollback note INC-7 <text>``."""
        return self._add(incident_id, user=user, text=text, data={"source": "command"})

    def add_message(self, message: SlackMessage, *, user: str) -> NoteResult:
        """The "Add to incident timeline" shortcut on ``message``, used by ``user``."""
        if not message.text.strip():
            return NoteResult("empty", why="that message has no text to add")
        found = self.incident_of(message)
        if isinstance(found, NoteResult):
            return found
        data: dict[str, Any] = {
            "source": "message",
            "author": message.author,
            "channel": message.channel,
            "message_ts": message.ts,
            "permalink": self._link(message),
        }
        return self._add(found, user=user, text=message.text, data=data)

    def incident_of(self, message: SlackMessage) -> int | NoteResult:
        """The incident ``message`` belongs to, or why none can be chosen."""
        thread = message.thread_ts or message.ts
        with self._uow(read_only=True) as uow:
            ids = uow.incidents.for_message(channel=message.channel, ts=thread)
            if not ids:
                services = [s.name for s in self._catalog.services if s.channel == message.channel]
                ids = tuple(i.id for i in uow.incidents.open_for_services(services=services))
        if len(ids) == 1:
            return ids[0]
        if not ids:
            return NoteResult("no_incident", why="no incident is open in this channel")
        return NoteResult(
            "ambiguous", why="this channel has several open incidents", candidates=tuple(ids)
        )

    def _link(self, message: SlackMessage) -> str | None:
        try:
            return self._permalink(message.channel, message.ts)
        except Exception as exc:  # the note matters more than its link
            log.warning("no permalink for %s/%s: %s", message.channel, message.ts, exc)
            return None

    def _add(self, incident_id: int, *, user: str, text: str, data: dict[str, Any]) -> NoteResult:
        name = format_incident_id(incident_id)
        text = text.strip()
        if not text:
            return NoteResult("empty", incident_id, why="a note needs some text")
        with self._uow(read_only=True) as uow:
            found = uow.incidents.get(id=incident_id)
            service_name = found.service if found else None
        if service_name is None:
            return NoteResult("no_incident", incident_id, why=f"there is no incident {name}")
        service = self._catalog.service(service_name)
        if service is None:
            why = f"{name} is for {service_name}, no longer in the catalog"
            return NoteResult("refused", incident_id, why=why)
        allowed = may_add_note(service, self._principal(service, user))
        with self._uow() as uow:
            if not allowed:
                uow.timeline.append(
                    at=self._clock.now(),
                    actor=user,
                    kind=TimelineKind.NOTE_REFUSED,
                    summary=f"refused a note by {user}: {allowed.reason}",
                    incident_id=incident_id,
                    service=service_name,
                    data={"action": "note", "reason": allowed.reason, "source": data["source"]},
                )
                uow.commit()
                return NoteResult("refused", incident_id, why=allowed.reason)
            clipped = text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 1] + "…"
            author = data.get("author")
            by = f"{user}" if author in (None, user) else f"{user}, from {author}'s message"
            entry = uow.timeline.append(
                at=self._clock.now(),
                actor=user,
                kind=TimelineKind.NOTE_ADDED,
                summary=f"note by {by}: {clipped}",
                incident_id=incident_id,
                service=service_name,
                data={"text": clipped, "added_by": user, **data},
            )
            uow.commit()
            stored = entry.data.get("text", "")
        return NoteResult("added", incident_id, text=str(stored))


__all__ = ["IncidentNotes", "NoteResult", "SlackMessage"]
