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
until commit. Both happen in one round trip, the function ``timeline_chain_head``
(migration ``0009_ingest_pg``), whose read takes its snapshot after the lock is granted.
On SQLite every writing transaction holds the database write lock from its first
statement (``BEGIN IMMEDIATE``, see ``storage.engine``), which serialises writers
already. Reading the last hash from the database at each flush (never from a cache) keeps
the chain right when a savepoint is rolled back.
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import event, inspect, select, text
from sqlalchemy.orm import Session

from rollback_bot.storage.chain_check import (
    CHAIN_VERSION,
    BrokenLink,
    ChainKey,
    Verification,
    chain_of,
    check,
    describe,
    entry_hash,
    hash_of,
    stored_hash,
    verify,
)
from rollback_bot.storage.models import TimelineEvent

# Advisory lock namespaces (the first key of the two-key form): one per kind of chain.
_LOCK_INCIDENT = 0x7462_0001
_LOCK_SERVICE = 0x7462_0002
_LOCK_GLOBAL = 0x7462_0003

# --- writing -------------------------------------------------------------------------------


def _lock_key(key: ChainKey) -> tuple[int, int]:
    """The two keys of ``key``'s chain's advisory lock."""
    kind, value = key
    if kind == "incident":
        assert isinstance(value, int)
        return _LOCK_INCIDENT, _int32(value)
    if kind == "service":
        return _LOCK_SERVICE, _int32(zlib.crc32(str(value).encode()))
    return _LOCK_GLOBAL, 0


def _locked_head(session: Session, key: ChainKey) -> str | None:
    """Lock ``key``'s chain for this transaction (PostgreSQL) and read its newest hash.

    On PostgreSQL one statement, ``timeline_chain_head`` (migration ``0009_ingest_pg``):
    it takes the advisory lock, then reads with a snapshot taken after the lock was
    granted. SQLite: this transaction already holds the database write lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return last_hash(session, key)
    ns, k = _lock_key(key)
    kind, value = key
    params = {
        "ns": ns,
        "k": k,
        "incident": value if kind == "incident" else None,
        "service": value if kind == "service" else None,
    }
    return session.execute(_HEAD, params).scalar()


_HEAD = text(
    "SELECT timeline_chain_head(CAST(:ns AS integer), CAST(:k AS integer), "
    "CAST(:incident AS integer), CAST(:service AS text))"
)


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
                heads[key] = _locked_head(session, key)
            entry.prev_hash = heads[key]
            entry.hash = hash_of(entry, heads[key])
            heads[key] = entry.hash


__all__ = [
    "CHAIN_VERSION",
    "BrokenLink",
    "ChainKey",
    "Verification",
    "chain_of",
    "check",
    "describe",
    "entry_hash",
    "hash_of",
    "last_hash",
    "stored_hash",
    "verify",
]
