"""Domain-level failures raised by the storage layer.

Callers handle "there is already a rollback for checkout" or "someone else moved this
rollback first", never driver-specific IntegrityError or StaleDataError; the repositories
and the unit of work translate one into the other.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class for every error this package raises on purpose."""


class ActiveRollbackExists(StorageError):
    """A service already has an active rollback; only one may run per service."""

    def __init__(self, service: str, existing_id: int | None) -> None:
        super().__init__(f"service {service!r} already has an active rollback #{existing_id}")
        self.service = service
        self.existing_id = existing_id


class OpenIncidentExists(StorageError):
    """A service already has an open incident; alerts join it instead of opening another."""

    def __init__(self, service: str, existing_id: int | None) -> None:
        super().__init__(f"service {service!r} already has open incident #{existing_id}")
        self.service = service
        self.existing_id = existing_id


class DuplicateApproval(StorageError):
    """The same person already approved or denied this rollback."""

    def __init__(self, rollback_id: int, actor: str) -> None:
        super().__init__(f"{actor} already decided on rollback #{rollback_id}")
        self.rollback_id = rollback_id
        self.actor = actor


class ConcurrentUpdate(StorageError):
    """The row changed since it was loaded (optimistic lock); reload and decide again."""


class DatabaseNotMigrated(StorageError):
    """The schema is missing or behind the code; the server must not start on it."""

    def __init__(self, current: str | None, head: str | None) -> None:
        super().__init__(
            f"database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `rollback-bot migrate`"
        )
        self.current = current
        self.head = head
