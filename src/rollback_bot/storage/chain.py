"""The timeline's hash chain: every entry seals its content and the entry before it.

Each ``timeline_events`` row carries ``hash``, the SHA-256 of the canonical JSON of its
content (kind, actor, time, incident, rollback, service, summary, data) and of
``prev_hash``, the hash of the entry before it on the same chain. Editing, deleting or
inserting a row behind the bot's back breaks the chain at that row, and
:func:`verify` (``rollback-bot verify-timeline``) says where.

Chains. An entry that names an incident is on that incident's chain; one without an
incident is on its service's chain; one with neither is on the global chain. Within a
chain the order is the row id (the database assigns ids in insertion order).

Linking happens at flush time (a ``before_flush`` listener, after the redactor), in the
transaction that writes the entry: on PostgreSQL the writer first takes a transaction
advisory lock for the chain (``pg_advisory_xact_lock``), then reads the chain's last hash,
so two replicas appending to one incident queue instead of forking it; the lock is held
until commit. On SQLite every writing transaction holds the database write lock from its
first statement (``BEGIN IMMEDIATE``, see ``storage.engine``), which serialises writers
already. Reading the last hash from the database at each flush (never from a cache) keeps
the chain right when a savepoint is rolled back.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event, inspect, select, text
from sqlalchemy.orm import Session

from rollback_bot.ids import format_incident_id
from rollback_bot.storage.models import TimelineEvent

#: Bumped if the canonical form ever changes (old rows would then need a re-seal migration).
CHAIN_VERSION = 1

# Advisory lock namespaces (the first key of the two-key form): one per kind of chain.
_LOCK_INCIDENT = 0x7462_0001
_LOCK_SERVICE = 0x7462_0002
_LOCK_GLOBAL = 0x7462_0003

ChainKey = tuple[str, int | str | None]


def chain_of(incident_id: int | None, service: str | None) -> ChainKey:
    """The chain an entry belongs to: its incident's, else its service's, else the global one."""
    if incident_id is not None:
        return ("incident", incident_id)
    if service is not None:
        return ("service", service)
    return ("global", None)


def describe(key: ChainKey) -> str:
    kind, value = key
    if kind == "incident":
        assert isinstance(value, int)
        return format_incident_id(value)
    return f"service {value}" if kind == "service" else "entries without incident or service"


def _canonical_time(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # the column type rejects naive values; read-backs are UTC
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(node: Any) -> Any:
    """JSON as the database gives it back: PostgreSQL's JSONB stores numbers as numeric, so
    an integral float (``2.0``, ``1e20``) may come back as an int; both hash alike."""
    if isinstance(node, dict):
        return {str(k): _canonical(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_canonical(v) for v in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    return node


def entry_hash(
    *,
    prev_hash: str | None,
    kind: str,
    actor: str,
    at: datetime,
    incident_id: int | None,
    rollback_id: int | None,
    service: str | None,
    summary: str,
    data: dict[str, Any] | None,
) -> str:
    """SHA-256 (hex) of the entry's canonical JSON, including the previous entry's hash."""
    content = {
        "v": CHAIN_VERSION,
        "prev": prev_hash,
        "kind": kind,
        "actor": actor,
        "at": _canonical_time(at),
        "incident": incident_id,
        "rollback": rollback_id,
        "service": service,
        "summary": summary,
        "data": _canonical(data or {}),
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def hash_of(row: Any, prev_hash: str | None) -> str:
    """:func:`entry_hash` of a row (a ``TimelineEvent`` or a result row with its columns)."""
    return entry_hash(
        prev_hash=prev_hash,
        kind=row.kind,
        actor=row.actor,
        at=row.at,
        incident_id=row.incident_id,
        rollback_id=row.rollback_id,
        service=row.service,
        summary=row.summary,
        data=row.data,
    )


# --- writing -------------------------------------------------------------------------------


def _lock(session: Session, key: ChainKey) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: this transaction already holds the database write lock
    kind, value = key
    if kind == "incident":
        assert isinstance(value, int)
        ns, k = _LOCK_INCIDENT, value
    elif kind == "service":
        ns, k = _LOCK_SERVICE, _int32(zlib.crc32(str(value).encode()))
    else:
        ns, k = _LOCK_GLOBAL, 0
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, :k)"), {"ns": ns, "k": _int32(k)})


def _int32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - 0x1_0000_0000 if value >= 0x8000_0000 else value


def _where(key: ChainKey) -> Any:
    kind, value = key
    if kind == "incident":
        return TimelineEvent.incident_id == value
    no_incident = TimelineEvent.incident_id.is_(None)
    if kind == "service":
        return no_incident & (TimelineEvent.service == value)
    return no_incident & TimelineEvent.service.is_(None)


def last_hash(session: Session, key: ChainKey) -> str | None:
    """The hash of the newest stored entry on ``key``'s chain (None: the chain is empty)."""
    stmt = select(TimelineEvent.hash).where(_where(key)).order_by(TimelineEvent.id.desc()).limit(1)
    return session.scalars(stmt).first()


@event.listens_for(Session, "before_flush")
def _link_new_entries(session: Session, _context: Any, _instances: Any) -> None:
    """Seal every new entry of this flush onto its chain, in insertion (= id) order."""
    new = [obj for obj in session.new if isinstance(obj, TimelineEvent)]
    if not new:
        return
    new.sort(key=lambda obj: inspect(obj).insert_order or 0)
    heads: dict[ChainKey, str | None] = {}
    with session.no_autoflush:
        for entry in new:
            key = chain_of(entry.incident_id, entry.service)
            if key not in heads:
                _lock(session, key)
                heads[key] = last_hash(session, key)
            entry.prev_hash = heads[key]
            entry.hash = hash_of(entry, heads[key])
            heads[key] = entry.hash


# --- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenLink:
    chain: ChainKey
    entry_id: int
    what: str  # "content" (the row was edited) or "link" (a row was removed or inserted)
    expected: str | None
    stored: str | None

    def describe(self) -> str:
        if self.what == "content":
            field_name, why = "hash", "its content changed after it was written"
        else:
            field_name, why = "prev_hash", "the entry before it is missing, moved or changed"
        return (
            f"{describe(self.chain)}: entry {self.entry_id} is broken ({why}); "
            f"expected {field_name} {self.expected or '(none)'}, "
            f"stored {field_name} {self.stored or '(none)'}"
        )


@dataclass
class Verification:
    entries: int = 0
    chains: int = 0
    broken: list[BrokenLink] = field(default_factory=list)  # the first break of each chain

    @property
    def ok(self) -> bool:
        return not self.broken


_COLUMNS = (
    TimelineEvent.id,
    TimelineEvent.incident_id,
    TimelineEvent.rollback_id,
    TimelineEvent.service,
    TimelineEvent.at,
    TimelineEvent.actor,
    TimelineEvent.kind,
    TimelineEvent.summary,
    TimelineEvent.data,
    TimelineEvent.prev_hash,
    TimelineEvent.hash,
)


def _rows(engine: Engine, incident_id: int | None) -> Iterator[Any]:
    stmt = select(*_COLUMNS).order_by(TimelineEvent.id)
    if incident_id is not None:
        stmt = stmt.where(TimelineEvent.incident_id == incident_id)
    with engine.connect() as conn:
        yield from conn.execution_options(yield_per=2000).execute(stmt)


def check(rows: Iterable[Any]) -> Verification:
    """Recompute the chains of ``rows`` (in id order); the first broken link of each chain.

    After a break the check goes on from the stored hash, so one edited row is reported
    once, not as every row after it.
    """
    result = Verification()
    heads: dict[ChainKey, str | None] = {}
    broken: set[ChainKey] = set()
    for row in rows:
        result.entries += 1
        key = chain_of(row.incident_id, row.service)
        prev = heads.get(key)
        heads[key] = row.hash
        if key in broken:
            continue
        problem: BrokenLink | None = None
        if row.prev_hash != prev:
            problem = BrokenLink(key, row.id, "link", prev, row.prev_hash)
        else:
            expected = hash_of(row, prev)
            if row.hash != expected:
                problem = BrokenLink(key, row.id, "content", expected, row.hash)
        if problem is not None:
            broken.add(key)
            result.broken.append(problem)
    result.chains = len(heads)
    return result


def verify(engine: Engine, *, incident_id: int | None = None) -> Verification:
    """Check every chain, or only ``incident_id``'s."""
    return check(_rows(engine, incident_id))


__all__ = [
    "CHAIN_VERSION",
    "BrokenLink",
    "Verification",
    "chain_of",
    "check",
    "entry_hash",
    "hash_of",
    "last_hash",
    "verify",
]
